//! Response charsets: how text chunks become bytes.
//!
//! Text written to a live stream is encoded with the response's charset, which
//! is named in the `Content-Type` header. UTF-8 is the default and costs
//! nothing; any label of the [WHATWG Encoding Standard] works through
//! `encoding_rs`.
//!
//! [WHATWG Encoding Standard]: https://encoding.spec.whatwg.org/#names-and-labels

use bytes::Bytes;
use encoding_rs::{EncoderResult, Encoding, UTF_8};
use std::borrow::Cow;

use crate::error::{CharsetError, LiveError};

/// The charset a live response encodes its text in.
///
/// # Example
///
/// ```
/// use rill::Charset;
///
/// let latin = Charset::for_label("latin1").unwrap();
/// assert_eq!(latin.name(), "windows-1252");
/// assert!(Charset::for_label("klingon").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Charset(&'static Encoding);

impl Charset {
    /// UTF-8, the default.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Charset;
    ///
    /// assert_eq!(Charset::UTF_8.name(), "UTF-8");
    /// assert_eq!(Charset::for_label("utf8").ok(), Some(Charset::UTF_8));
    /// ```
    pub const UTF_8: Charset = Charset(UTF_8);

    /// Looks up a charset by any WHATWG label (`"utf-8"`, `"latin1"`,
    /// `"shift_jis"`, …), case-insensitively.
    ///
    /// Encodings that the standard only decodes (UTF-16, `replacement`) encode
    /// as UTF-8, so they map to UTF-8 here, and the header says so.
    ///
    /// # Errors
    ///
    /// [`CharsetError`] when the label is unknown.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Charset;
    ///
    /// // A label from configuration (or an `Accept-Charset` header): handle the error.
    /// let sjis = Charset::for_label(" Shift_JIS ")?;
    /// assert_eq!(sjis.name(), "Shift_JIS");
    /// assert_eq!(Charset::for_label("utf-16le")?, Charset::UTF_8); // decode-only encodings
    /// # Ok::<(), rill::CharsetError>(())
    /// ```
    pub fn for_label(label: &str) -> Result<Charset, CharsetError> {
        Encoding::for_label(label.trim().as_bytes())
            .map(Charset::from)
            .ok_or_else(|| CharsetError {
                label: label.to_owned(),
            })
    }

    /// The canonical name, as written in the `Content-Type` charset parameter.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Charset;
    ///
    /// let charset = Charset::for_label("latin1")?;
    /// let content_type = format!("text/plain; charset={}", charset.name());
    /// assert_eq!(content_type, "text/plain; charset=windows-1252");
    /// # Ok::<(), rill::CharsetError>(())
    /// ```
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The underlying `encoding_rs` encoding.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Charset;
    ///
    /// // Decode a client's upload in the same charset with encoding_rs.
    /// let charset = Charset::for_label("windows-1252")?;
    /// let (text, _, had_errors) = charset.encoding().decode(b"caf\xe9");
    /// assert_eq!((text.as_ref(), had_errors), ("café", false));
    /// # Ok::<(), rill::CharsetError>(())
    /// ```
    pub fn encoding(self) -> &'static Encoding {
        self.0
    }

    /// Whether this is UTF-8 (text needs no transcoding).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Charset;
    ///
    /// assert!(Charset::UTF_8.is_utf8());
    /// assert!(!Charset::for_label("koi8-r")?.is_utf8());
    /// # Ok::<(), rill::CharsetError>(())
    /// ```
    pub fn is_utf8(self) -> bool {
        self.0 == UTF_8
    }

    /// Encodes `text`, refusing (rather than replacing) any character the
    /// charset cannot represent.
    ///
    /// # Errors
    ///
    /// [`LiveError::Unencodable`] naming the first such character.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Charset, LiveError};
    ///
    /// let latin = Charset::for_label("latin1")?;
    /// assert_eq!(latin.encode("café".into())?, &b"caf\xe9"[..]);
    /// assert_eq!(
    ///     latin.encode("日本".into()),
    ///     Err(LiveError::Unencodable { character: '日', charset: "windows-1252" })
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(self, text: Cow<'_, str>) -> Result<Bytes, LiveError> {
        if self.is_utf8() {
            return Ok(match text {
                Cow::Borrowed(s) => Bytes::copy_from_slice(s.as_bytes()),
                Cow::Owned(s) => Bytes::from(s),
            });
        }
        let mut encoder = self.0.new_encoder();
        let unencodable = |character| LiveError::Unencodable {
            character,
            charset: self.name(),
        };
        let capacity = encoder
            .max_buffer_length_from_utf8_without_replacement(text.len())
            .ok_or(LiveError::Unencodable {
                character: '\u{FFFD}',
                charset: self.name(),
            })?;
        let mut out = vec![0u8; capacity];
        let (result, _read, written) =
            encoder.encode_from_utf8_without_replacement(&text, &mut out, true);
        match result {
            EncoderResult::InputEmpty => {
                out.truncate(written);
                Ok(Bytes::from(out))
            }
            EncoderResult::Unmappable(c) => Err(unencodable(c)),
            // The buffer was sized by encoding_rs's own worst-case bound.
            EncoderResult::OutputFull => unreachable!("encoding_rs worst-case bound was too small"),
        }
    }
}

impl From<&'static Encoding> for Charset {
    /// Wraps an encoding; decode-only encodings become their output encoding
    /// (UTF-8).
    fn from(encoding: &'static Encoding) -> Self {
        Charset(encoding.output_encoding())
    }
}

impl Default for Charset {
    fn default() -> Self {
        Charset::UTF_8
    }
}

impl std::fmt::Debug for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Charset").field(&self.name()).finish()
    }
}

impl std::fmt::Display for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_encodes_euro_as_0x80() {
        let cs = Charset::for_label("windows-1252").unwrap();
        assert_eq!(cs.encode("€5".into()).unwrap(), &b"\x805"[..]);
    }

    #[test]
    fn unmappable_character_is_named() {
        let cs = Charset::for_label("latin1").unwrap();
        assert_eq!(
            cs.encode("a☃b".into()),
            Err(LiveError::Unencodable {
                character: '☃',
                charset: "windows-1252"
            })
        );
    }

    #[test]
    fn utf16_labels_encode_as_utf8() {
        assert_eq!(Charset::for_label("utf-16le").unwrap(), Charset::UTF_8);
    }
}
