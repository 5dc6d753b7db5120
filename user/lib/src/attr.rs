//! Netlink attributes for any family: a builder with nesting
//! ([`AttrBuilder`], `NLA_F_NESTED`) and typed, zero-copy getters
//! ([`AttrExt`], [`AttrTable`]) over the shared, never-panicking reader
//! [`proto::Attrs`](crate::proto::Attrs).
//!
//! Reading never panics and never reads out of bounds, whatever the bytes;
//! a getter given a payload of the wrong size answers [`AttrError`] instead
//! of guessing. Nested attributes are read whether or not the sender set
//! `NLA_F_NESTED` (older families such as `nlctrl` do not).
//!
//! ```
//! use rustnl::attr::{AttrBuilder, AttrExt, AttrTable};
//!
//! let mut w = AttrBuilder::new();
//! w.put_str(1, "eth0")?.put_u32(2, 1500)?.put_flag(3, true)?;
//! w.nested(4, |w| {
//!     w.put_u16(1, 7)?;
//!     w.put_u64(2, u64::MAX)?;
//!     Ok(())
//! })?;
//!
//! let t = AttrTable::new(w.as_bytes());
//! assert_eq!(t.str(1)?, Some("eth0"));
//! assert_eq!(t.u32(2)?, Some(1500));
//! assert!(t.flag(3)?);
//! let inner = t.nested(4)?.expect("present");
//! assert_eq!(inner.u16(1)?, Some(7));
//! assert_eq!(inner.u64(2)?, Some(u64::MAX));
//! // The same, one attribute at a time.
//! for a in t.iter() {
//!     let a = a?;
//!     if a.ty == 2 {
//!         assert_eq!(a.get_u32()?, 1500);
//!     }
//! }
//! # Ok::<(), rustnl::Error>(())
//! ```

pub use crate::errors::AttrError;
use crate::errors::{Error, Result};
use crate::proto::genl::MAX_ATTR_PAYLOAD;
use crate::proto::{nlmsg_align, put_attr, Attr, Attrs, NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK};

/// Typed getters on one attribute ([`proto::Attr`](crate::proto::Attr)):
/// integers in host byte order with the exact size, strings up to their
/// NUL, nested streams. Implemented for [`Attr`].
pub trait AttrExt<'a> {
    /// The payload as a `u8`.
    fn get_u8(&self) -> Result<u8, AttrError>;
    /// The payload as a `u16`.
    fn get_u16(&self) -> Result<u16, AttrError>;
    /// The payload as a `u32`.
    fn get_u32(&self) -> Result<u32, AttrError>;
    /// The payload as a `u64`.
    fn get_u64(&self) -> Result<u64, AttrError>;
    /// The payload as an `i32`.
    fn get_i32(&self) -> Result<i32, AttrError>;
    /// The payload as a variable-size unsigned integer (YNL type `uint`,
    /// the kernel's `nla_get_uint`): 4 bytes or 8.
    fn get_uint(&self) -> Result<u64, AttrError>;
    /// The payload as a string: up to the first NUL (the whole payload if it
    /// has none), which must be UTF-8.
    fn get_str(&self) -> Result<&'a str, AttrError>;
    /// The payload, as is.
    fn get_bytes(&self) -> &'a [u8];
    /// The payload as a stream of attributes.
    fn get_nested(&self) -> AttrTable<'a>;
}

fn fixed<const N: usize>(a: &Attr<'_>) -> Result<[u8; N], AttrError> {
    <[u8; N]>::try_from(a.payload).map_err(|_| AttrError::Size {
        ty: a.ty,
        expected: N,
        got: a.payload.len(),
    })
}

impl<'a> AttrExt<'a> for Attr<'a> {
    fn get_u8(&self) -> Result<u8, AttrError> {
        fixed::<1>(self).map(|b| b[0])
    }
    fn get_u16(&self) -> Result<u16, AttrError> {
        fixed(self).map(u16::from_ne_bytes)
    }
    fn get_u32(&self) -> Result<u32, AttrError> {
        fixed(self).map(u32::from_ne_bytes)
    }
    fn get_u64(&self) -> Result<u64, AttrError> {
        fixed(self).map(u64::from_ne_bytes)
    }
    fn get_i32(&self) -> Result<i32, AttrError> {
        fixed(self).map(i32::from_ne_bytes)
    }
    fn get_uint(&self) -> Result<u64, AttrError> {
        match self.payload.len() {
            4 => self.get_u32().map(u64::from),
            _ => self.get_u64(),
        }
    }
    fn get_str(&self) -> Result<&'a str, AttrError> {
        let p = self.payload;
        let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
        std::str::from_utf8(p.get(..end).unwrap_or_default())
            .map_err(|_| AttrError::NotUtf8 { ty: self.ty })
    }
    fn get_bytes(&self) -> &'a [u8] {
        self.payload
    }
    fn get_nested(&self) -> AttrTable<'a> {
        AttrTable::new(self.payload)
    }
}

/// A zero-copy view of a stream of attributes, looked up by type. Lookups
/// walk the stream (attribute sets are short); the first attribute of a
/// type wins. A malformed stream is an error only if it is malformed before
/// the attribute asked for is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrTable<'a> {
    buf: &'a [u8],
}

macro_rules! table_getter {
    ($(#[$doc:meta])* $name:ident, $get:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(&self, ty: u16) -> Result<Option<$ty>, AttrError> {
            self.get(ty)?.map(|a| a.$get()).transpose()
        }
    };
}

impl<'a> AttrTable<'a> {
    /// A view of the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> AttrTable<'a> {
        AttrTable { buf }
    }

    /// The bytes viewed.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The attributes in order; stops after the first malformed one.
    pub fn iter(&self) -> impl Iterator<Item = Result<Attr<'a>, AttrError>> + 'a {
        Attrs::new(self.buf).map(|a| a.map_err(AttrError::from))
    }

    /// The first attribute of type `ty` (flags masked off), if any.
    pub fn get(&self, ty: u16) -> Result<Option<Attr<'a>>, AttrError> {
        let ty = ty & NLA_TYPE_MASK;
        for a in Attrs::new(self.buf) {
            let a = a?;
            if a.ty == ty {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Whether a flag attribute (no payload) of type `ty` is present.
    pub fn flag(&self, ty: u16) -> Result<bool, AttrError> {
        Ok(self.get(ty)?.is_some())
    }

    table_getter!(
        /// Attribute `ty` as a `u8`.
        u8, get_u8, u8
    );
    table_getter!(
        /// Attribute `ty` as a `u16`.
        u16, get_u16, u16
    );
    table_getter!(
        /// Attribute `ty` as a `u32`.
        u32, get_u32, u32
    );
    table_getter!(
        /// Attribute `ty` as a `u64`.
        u64, get_u64, u64
    );
    table_getter!(
        /// Attribute `ty` as an `i32`.
        i32, get_i32, i32
    );
    table_getter!(
        /// Attribute `ty` as a `uint` (4 or 8 bytes).
        uint, get_uint, u64
    );
    table_getter!(
        /// Attribute `ty` as a string (up to its NUL).
        str, get_str, &'a str
    );

    /// Attribute `ty`'s payload.
    pub fn bytes(&self, ty: u16) -> Result<Option<&'a [u8]>, AttrError> {
        Ok(self.get(ty)?.map(|a| a.payload))
    }

    /// Attribute `ty`'s payload as a stream of attributes.
    pub fn nested(&self, ty: u16) -> Result<Option<AttrTable<'a>>, AttrError> {
        Ok(self.get(ty)?.map(|a| a.get_nested()))
    }
}

/// An open nest of an [`AttrBuilder`]: close it with [`AttrBuilder::end_nested`].
#[derive(Debug)]
#[must_use = "a nest must be closed with AttrBuilder::end_nested"]
pub struct Nest {
    start: usize,
}

/// Builds a stream of attributes (header, payload, zeroed padding each),
/// nests included, in a buffer of its own that grows (as
/// [`MessageBuilder`](crate::MessageBuilder) does for messages). Every
/// `put` checks the 65,535-byte limit of `nla_len` and answers
/// [`Error::TooLarge`] (with the payload's size) past it, writing nothing.
/// Each attribute is laid out by the shared
/// [`proto::put_attr`](crate::proto::put_attr); the kernel module writes
/// into a buffer of fixed size with
/// [`proto::genl::AttrWriter`](crate::proto::genl::AttrWriter) instead.
#[derive(Debug, Default, Clone)]
pub struct AttrBuilder {
    buf: Vec<u8>,
}

impl AttrBuilder {
    /// An empty writer.
    pub fn new() -> AttrBuilder {
        AttrBuilder::default()
    }

    /// The encoded attributes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded attributes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Empties the writer, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Appends attribute `ty` with `payload`.
    pub fn put(&mut self, ty: u16, payload: &[u8]) -> Result<&mut AttrBuilder> {
        self.put_parts(ty, &[payload])
    }

    fn put_parts(&mut self, ty: u16, parts: &[&[u8]]) -> Result<&mut AttrBuilder> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_ATTR_PAYLOAD {
            return Err(Error::TooLarge(len));
        }
        let mut pos = self.buf.len();
        self.buf.resize(pos + nlmsg_align(NLA_HDRLEN + len), 0);
        let first = parts.first().copied().unwrap_or_default();
        let start = pos;
        put_attr(&mut self.buf, &mut pos, ty, first).ok_or(Error::TooLarge(len))?;
        // Any further parts follow the first; fix the length.
        let mut at = start + NLA_HDRLEN + first.len();
        for p in parts.iter().skip(1) {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let total = (NLA_HDRLEN + len) as u16;
        self.buf[start..start + 2].copy_from_slice(&total.to_ne_bytes());
        Ok(self)
    }

    /// Appends a `u8`.
    pub fn put_u8(&mut self, ty: u16, v: u8) -> Result<&mut AttrBuilder> {
        self.put(ty, &[v])
    }
    /// Appends a `u16`.
    pub fn put_u16(&mut self, ty: u16, v: u16) -> Result<&mut AttrBuilder> {
        self.put(ty, &v.to_ne_bytes())
    }
    /// Appends a `u32`.
    pub fn put_u32(&mut self, ty: u16, v: u32) -> Result<&mut AttrBuilder> {
        self.put(ty, &v.to_ne_bytes())
    }
    /// Appends a `u64`.
    pub fn put_u64(&mut self, ty: u16, v: u64) -> Result<&mut AttrBuilder> {
        self.put(ty, &v.to_ne_bytes())
    }
    /// Appends an `i32`.
    pub fn put_i32(&mut self, ty: u16, v: i32) -> Result<&mut AttrBuilder> {
        self.put(ty, &v.to_ne_bytes())
    }
    /// Appends a `uint` as the kernel's `nla_put_uint` does: 4 bytes when
    /// the value fits a `u32`, else 8.
    pub fn put_uint(&mut self, ty: u16, v: u64) -> Result<&mut AttrBuilder> {
        match u32::try_from(v) {
            Ok(small) => self.put_u32(ty, small),
            Err(_) => self.put_u64(ty, v),
        }
    }
    /// Appends a NUL-terminated string.
    pub fn put_str(&mut self, ty: u16, s: &str) -> Result<&mut AttrBuilder> {
        self.put_parts(ty, &[s.as_bytes(), &[0]])
    }
    /// Appends flag `ty` (an attribute without payload) if `set`; a flag
    /// that is not set is absent (as the module's fixed-buffer writer
    /// [`proto::genl::AttrWriter`](crate::proto::genl::AttrWriter) has it).
    pub fn put_flag(&mut self, ty: u16, set: bool) -> Result<&mut AttrBuilder> {
        if set {
            self.put(ty, &[])?;
        }
        Ok(self)
    }

    /// Opens nest `ty` (`NLA_F_NESTED` set): what is put until
    /// [`AttrBuilder::end_nested`] goes inside it.
    pub fn begin_nested(&mut self, ty: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        Nest { start }
    }

    /// Closes `nest`: sets its length. A nest past 65,535 bytes is removed,
    /// with what was put in it, and is [`Error::TooLarge`].
    pub fn end_nested(&mut self, nest: Nest) -> Result<&mut AttrBuilder> {
        let len = self.buf.len().saturating_sub(nest.start);
        let Ok(len16) = u16::try_from(len) else {
            self.buf.truncate(nest.start);
            return Err(Error::TooLarge(len - NLA_HDRLEN));
        };
        if let Some(h) = self.buf.get_mut(nest.start..nest.start + 2) {
            h.copy_from_slice(&len16.to_ne_bytes());
        }
        Ok(self)
    }

    /// Appends nest `ty` holding what `fill` puts. On an error from `fill`
    /// or a nest too large, nothing of the nest stays.
    pub fn nested<F>(&mut self, ty: u16, fill: F) -> Result<&mut AttrBuilder>
    where
        F: FnOnce(&mut AttrBuilder) -> Result<()>,
    {
        let nest = self.begin_nested(ty);
        let start = nest.start;
        if let Err(e) = fill(self) {
            self.buf.truncate(start);
            return Err(e);
        }
        self.end_nested(nest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_sizes_and_bad_utf8_are_errors() {
        let mut w = AttrBuilder::new();
        w.put(1, &[1, 2, 3])
            .unwrap()
            .put(2, &[0xff, 0xfe, 0])
            .unwrap();
        let t = AttrTable::new(w.as_bytes());
        assert_eq!(
            t.u32(1),
            Err(AttrError::Size {
                ty: 1,
                expected: 4,
                got: 3
            })
        );
        assert_eq!(
            t.u16(1).unwrap_err().to_string(),
            "attribute 1: expected a 2-byte value, got 3 bytes"
        );
        assert_eq!(t.str(2), Err(AttrError::NotUtf8 { ty: 2 }));
        assert_eq!(t.u8(9), Ok(None));
        assert!(!t.flag(9).unwrap());
        // Truncated stream: an error before the attribute is found.
        let bytes = w.as_bytes();
        let cut = AttrTable::new(&bytes[..bytes.len() - 6]);
        assert_eq!(
            cut.u32(1).unwrap_err(),
            AttrError::Size {
                ty: 1,
                expected: 4,
                got: 3
            }
        );
        assert!(matches!(
            cut.get(2),
            Err(AttrError::Malformed { offset: 8 })
        ));
    }

    #[test]
    fn uints_take_4_or_8_bytes() {
        let mut w = AttrBuilder::new();
        w.put_uint(1, 7)
            .unwrap()
            .put_uint(2, u64::from(u32::MAX))
            .unwrap()
            .put_uint(3, u64::from(u32::MAX) + 1)
            .unwrap()
            .put_u64(4, 9)
            .unwrap()
            .put(5, &[1, 2, 3])
            .unwrap();
        let t = AttrTable::new(w.as_bytes());
        assert_eq!(t.bytes(1).unwrap().unwrap().len(), 4);
        assert_eq!(t.bytes(2).unwrap().unwrap().len(), 4);
        assert_eq!(t.bytes(3).unwrap().unwrap().len(), 8);
        assert_eq!(t.uint(1), Ok(Some(7)));
        assert_eq!(t.uint(2), Ok(Some(u64::from(u32::MAX))));
        assert_eq!(t.uint(3), Ok(Some(u64::from(u32::MAX) + 1)));
        assert_eq!(t.uint(4), Ok(Some(9)));
        assert_eq!(
            t.uint(5),
            Err(AttrError::Size {
                ty: 5,
                expected: 8,
                got: 3
            })
        );
        assert_eq!(t.uint(6), Ok(None));
    }

    #[test]
    fn strings_without_nul_and_flags_on_types() {
        let mut w = AttrBuilder::new();
        w.put(1, b"abc").unwrap().put_str(2, "").unwrap();
        let t = AttrTable::new(w.as_bytes());
        assert_eq!(t.str(1), Ok(Some("abc")));
        assert_eq!(t.str(2), Ok(Some("")));
        assert_eq!(t.bytes(2), Ok(Some(&[0u8][..])));
        // The nested flag is on the wire and masked off on reading.
        let mut n = AttrBuilder::new();
        n.nested(3, |_| Ok(())).unwrap();
        assert_eq!(n.as_bytes(), [4, 0, 3, 0x80].map(|b: u8| b));
        assert!(AttrTable::new(n.as_bytes()).nested(3).unwrap().is_some());
        assert!(AttrTable::new(n.as_bytes())
            .get(3 | NLA_F_NESTED)
            .unwrap()
            .is_some());
    }

    #[test]
    fn limits_of_nla_len() {
        let mut w = AttrBuilder::new();
        assert!(w.put(1, &vec![0; MAX_ATTR_PAYLOAD]).is_ok());
        assert_eq!(w.as_bytes().len(), nlmsg_align(u16::MAX as usize));
        w.clear();
        assert!(matches!(
            w.put(1, &vec![0; MAX_ATTR_PAYLOAD + 1]),
            Err(Error::TooLarge(n)) if n == MAX_ATTR_PAYLOAD + 1
        ));
        assert!(w.as_bytes().is_empty());
        // A nest that outgrows nla_len is removed entirely.
        w.put_u8(7, 1).unwrap();
        let r = w.nested(2, |w| {
            w.put(1, &vec![0; 40_000])?;
            w.put(1, &vec![0; 40_000])?;
            Ok(())
        });
        assert!(matches!(r, Err(Error::TooLarge(_))), "{r:?}");
        assert_eq!(w.as_bytes().len(), 8);
        // So is one whose filler fails.
        let r = w.nested(2, |w| {
            w.put_u32(1, 5)?;
            Err(Error::TooLarge(0))
        });
        assert!(r.is_err());
        assert_eq!(w.as_bytes().len(), 8);
    }

    /// A tree of attributes to encode and decode.
    #[derive(Clone, Debug, PartialEq)]
    enum Value {
        U8(u8),
        U16(u16),
        U32(u32),
        U64(u64),
        I32(i32),
        Str(String),
        Bytes(Vec<u8>),
        Flag,
        Uint(u64),
        Nested(Vec<(u16, Value)>),
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<u8>().prop_map(Value::U8),
            any::<u16>().prop_map(Value::U16),
            any::<u32>().prop_map(Value::U32),
            any::<u64>().prop_map(Value::U64),
            any::<i32>().prop_map(Value::I32),
            "[^\0]{0,20}".prop_map(Value::Str),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            Just(Value::Flag),
            any::<u64>().prop_map(Value::Uint),
        ];
        leaf.prop_recursive(3, 40, 6, |inner| {
            prop::collection::vec((0u16..0x3fff, inner), 0..6).prop_map(Value::Nested)
        })
    }

    fn encode(w: &mut AttrBuilder, ty: u16, v: &Value) -> Result<()> {
        match v {
            Value::U8(x) => w.put_u8(ty, *x),
            Value::U16(x) => w.put_u16(ty, *x),
            Value::U32(x) => w.put_u32(ty, *x),
            Value::U64(x) => w.put_u64(ty, *x),
            Value::I32(x) => w.put_i32(ty, *x),
            Value::Str(s) => w.put_str(ty, s),
            Value::Bytes(b) => w.put(ty, b),
            Value::Flag => w.put_flag(ty, true),
            Value::Uint(x) => w.put_uint(ty, *x),
            Value::Nested(items) => w.nested(ty, |w| {
                for (t, v) in items {
                    encode(w, *t, v)?;
                }
                Ok(())
            }),
        }
        .map(|_| ())
    }

    fn decode_as(a: Attr<'_>, like: &Value) -> Value {
        match like {
            Value::U8(_) => Value::U8(a.get_u8().unwrap()),
            Value::U16(_) => Value::U16(a.get_u16().unwrap()),
            Value::U32(_) => Value::U32(a.get_u32().unwrap()),
            Value::U64(_) => Value::U64(a.get_u64().unwrap()),
            Value::I32(_) => Value::I32(a.get_i32().unwrap()),
            Value::Str(_) => Value::Str(a.get_str().unwrap().to_string()),
            Value::Bytes(_) => Value::Bytes(a.get_bytes().to_vec()),
            Value::Flag => {
                assert!(a.payload.is_empty());
                Value::Flag
            }
            Value::Uint(_) => Value::Uint(a.get_uint().unwrap()),
            Value::Nested(items) => {
                let got: Vec<Attr<'_>> = a.get_nested().iter().map(Result::unwrap).collect();
                assert_eq!(got.len(), items.len());
                Value::Nested(
                    got.into_iter()
                        .zip(items)
                        .map(|(a, (t, v))| {
                            assert_eq!(a.ty, *t);
                            (a.ty, decode_as(a, v))
                        })
                        .collect(),
                )
            }
        }
    }

    proptest! {
        /// Encode → decode gives back every value, type and nesting.
        #[test]
        fn round_trip(items in prop::collection::vec((0u16..0x3fff, value()), 0..8)) {
            let mut w = AttrBuilder::new();
            for (t, v) in &items {
                encode(&mut w, *t, v).unwrap();
            }
            prop_assert_eq!(w.as_bytes().len() % 4, 0);
            let t = AttrTable::new(w.as_bytes());
            let got: Vec<_> = t.iter().map(Result::unwrap).collect();
            prop_assert_eq!(got.len(), items.len());
            for (a, (ty, v)) in got.into_iter().zip(&items) {
                prop_assert_eq!(a.ty, *ty);
                prop_assert_eq!(&decode_as(a, v), v);
            }
        }

        /// Any bytes: no getter panics, at any depth.
        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), ty in 0u16..8) {
            fn walk(t: AttrTable<'_>, ty: u16, depth: u32) {
                let _ = (t.u8(ty), t.u16(ty), t.u32(ty), t.u64(ty), t.i32(ty), t.uint(ty));
                let _ = (t.str(ty), t.bytes(ty), t.flag(ty));
                for a in t.iter().flatten() {
                    let _ = (a.get_u8(), a.get_u16(), a.get_u32(), a.get_u64(), a.get_i32(), a.get_str(), a.get_uint());
                    if depth < 4 {
                        walk(a.get_nested(), ty, depth + 1);
                    }
                }
            }
            walk(AttrTable::new(&bytes), ty, 0);
        }
    }
}
