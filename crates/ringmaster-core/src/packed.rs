//! Arrays of `u32` written bit-packed: every value in as many bits as the
//! largest needs. Codes of a column with six distinct values take 3 bits
//! each instead of a varint byte, a million row numbers 20 bits instead of
//! three bytes; and reading is one loop into an array of the exact size,
//! where a serde sequence calls a visitor per element and grows its vector
//! by doubling (fresh pages, copied: a large part of reading a snapshot).
//!
//! Layout, as one serde byte string: the bit width (1 to 32), the count
//! (u64, little-endian), then the values from the lowest bit up, in
//! little-endian bytes. Use it with `#[serde(with = "crate::packed")]`.

use serde::de::Error;

const HEAD: usize = 1 + 8;

/// The packed form of `values`.
pub fn pack(values: &[u32]) -> Vec<u8> {
    let max = values.iter().copied().max().unwrap_or(0);
    // At least one bit, so that a count always has data behind it.
    let width = (32 - max.leading_zeros()).max(1);
    let bits = values.len() as u64 * u64::from(width);
    let mut out = Vec::with_capacity(HEAD + bits.div_ceil(8) as usize + 8);
    out.push(width as u8);
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    let (mut acc, mut filled) = (0u64, 0u32);
    for &v in values {
        acc |= u64::from(v) << filled;
        filled += width;
        if filled >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            filled -= 32;
        }
    }
    out.extend_from_slice(&acc.to_le_bytes()[..filled.div_ceil(8) as usize]);
    out
}

/// The values of a packed array; an error when its length does not match
/// its count and width, so a damaged count cannot allocate past the data.
pub fn unpack(bytes: &[u8]) -> Result<Vec<u32>, &'static str> {
    if bytes.len() < HEAD || !(1..=32).contains(&bytes[0]) {
        return Err("packed array with a bad header");
    }
    let width = u32::from(bytes[0]);
    let count = u64::from_le_bytes(bytes[1..HEAD].try_into().expect("8 bytes"));
    let data = &bytes[HEAD..];
    let bits = count.checked_mul(u64::from(width));
    if bits.map(|b| b.div_ceil(8)) != Some(data.len() as u64) {
        return Err("packed array whose length does not fit its count");
    }
    let count = count as usize;
    let mut out = Vec::with_capacity(count);
    if width == 32 {
        out.extend(
            data.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
        return Ok(out);
    }
    let mask = (1u64 << width) - 1;
    let (mut acc, mut have) = (0u64, 0u32);
    let mut words = data.chunks(4);
    for _ in 0..count {
        if have < width {
            let chunk = words.next().expect("length checked above");
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            acc |= u64::from(u32::from_le_bytes(w)) << have;
            have += 32;
        }
        out.push((acc & mask) as u32);
        acc >>= width;
        have -= width;
    }
    Ok(out)
}

pub fn serialize<S: serde::Serializer>(values: &[u32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&pack(values))
}

pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a packed array of integers")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u32>, E> {
            unpack(v).map_err(E::custom)
        }
        // Self-describing formats (JSON) write bytes as a list of numbers.
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            unpack(&bytes).map_err(A::Error::custom)
        }
    }
    d.deserialize_bytes(Bytes)
}

/// A borrowed array that serializes packed.
pub struct Packed<'a>(pub &'a [u32]);

impl serde::Serialize for Packed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// An array read from its packed form.
pub struct Unpacked(pub Vec<u32>);

impl<'de> serde::Deserialize<'de> for Unpacked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Unpacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn widths_at_the_edges() {
        for values in [
            vec![],
            vec![0],
            vec![0, 0, 0],
            vec![1],
            vec![u32::MAX, 0, 7],
            (0..1000).collect::<Vec<u32>>(),
            vec![(1 << 20) - 1; 33],
        ] {
            assert_eq!(unpack(&pack(&values)).unwrap(), values);
        }
        // Six distinct codes in 3 bits: 1,000 of them in 375 bytes.
        let codes: Vec<u32> = (0..1000).map(|i| i % 6).collect();
        assert_eq!(pack(&codes).len(), HEAD + 375);
    }

    #[test]
    fn a_count_the_bytes_do_not_hold_is_refused() {
        let mut p = pack(&[5, 6, 7]);
        p[1] = 200;
        assert!(unpack(&p).is_err());
        let mut p = pack(&[5, 6, 7]);
        p.pop();
        assert!(unpack(&p).is_err());
        let mut p = pack(&[5, 6, 7]);
        p[0] = 33;
        assert!(unpack(&p).is_err());
        // Width 0 would let any count pass with no data behind it.
        let mut huge = vec![0u8];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(unpack(&huge).is_err());
        assert!(unpack(&[3]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(values in prop::collection::vec(any::<u32>(), 0..300), shift in 0u32..32) {
            let values: Vec<u32> = values.into_iter().map(|v| v >> shift).collect();
            prop_assert_eq!(unpack(&pack(&values)).unwrap(), values);
        }
    }
}
