//! Rails' names for channels and their broadcastings, so that a stream a
//! Rails app (or a migrated one) broadcasts to is the stream rill's
//! `stream_for` listens on.
//!
//! ```
//! use rill::cable::naming::{broadcasting_for, channel_name};
//!
//! assert_eq!(channel_name("ChatChannel"), "chat");
//! assert_eq!(channel_name("Admin::NotificationsChannel"), "admin:notifications");
//! assert_eq!(broadcasting_for("ChatChannel", &[&"room_1"]), "chat:room_1");
//! ```

use std::fmt::Display;

/// Rails' `channel_name`: the class name without its `Channel` suffix,
/// modules joined by `:`, in snake case (`HTTPStatusChannel` → `http_status`).
///
/// # Example
///
/// ```
/// use rill::cable::naming::channel_name;
///
/// assert_eq!(channel_name("WebNotificationsChannel"), "web_notifications");
/// assert_eq!(channel_name("HTTPStatusChannel"), "http_status");
/// assert_eq!(channel_name("Chat::RoomChannel"), "chat:room");
/// ```
pub fn channel_name(class: &str) -> String {
    let class = class.strip_suffix("Channel").unwrap_or(class);
    class
        .split("::")
        .map(underscore)
        .collect::<Vec<_>>()
        .join(":")
}

/// Rails' `broadcasting_for`: the channel's name and each object's text,
/// joined by `:` (Rails writes a model as its GlobalID; pass what your app
/// uses for it).
///
/// # Example
///
/// ```
/// use rill::cable::naming::broadcasting_for;
///
/// // `Chat::RoomChannel.broadcast_to(room, …)` in a Rails app with room 7 as "7":
/// assert_eq!(broadcasting_for("Chat::RoomChannel", &[&7]), "chat:room:7");
/// assert_eq!(broadcasting_for("GameChannel", &[&"g1", &"blue"]), "game:g1:blue");
/// ```
pub fn broadcasting_for(class: &str, objects: &[&dyn Display]) -> String {
    let mut name = channel_name(class);
    for object in objects {
        name.push(':');
        name.push_str(&object.to_string());
    }
    name
}

/// ActiveSupport's `underscore` for one constant name: a `_` before an
/// upper-case letter that follows a lower-case letter or digit, or that
/// starts a word after an acronym (`HTTPStatus` → `http_status`).
fn underscore(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        if c == '-' {
            out.push('_');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rails() {
        let cases = [
            ("ChatChannel", "chat"),
            ("Chat", "chat"),
            ("AppearanceChannel", "appearance"),
            ("WebNotificationsChannel", "web_notifications"),
            ("HTTPStatusChannel", "http_status"),
            ("Admin::NotificationsChannel", "admin:notifications"),
            ("V2::Live2Channel", "v2:live2"),
            ("Channel", ""),
        ];
        for (class, name) in cases {
            assert_eq!(channel_name(class), name, "{class}");
        }
    }

    #[test]
    fn broadcastings_join_with_colons() {
        assert_eq!(broadcasting_for("ChatChannel", &[]), "chat");
        assert_eq!(
            broadcasting_for("Admin::PostsChannel", &[&"gid://app/Post/1", &7]),
            "admin:posts:gid://app/Post/1:7"
        );
    }
}
