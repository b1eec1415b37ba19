//! Vectors read from raw bytes as SQLite hands BLOBs over: 8-byte aligned but
//! not 16-byte aligned, and (for robustness) not even 4-byte aligned.
use std::borrow::Cow;

use kernels::{bytes, f16, Error, Metric};

use crate::common::*;

/// A byte buffer holding `payload` at an address that is ≡ `rem` mod 16.
struct Placed {
    buf: Vec<u64>,
    start: usize,
    len: usize,
}

impl Placed {
    fn new(payload: &[u8], rem: usize) -> Placed {
        let mut buf = vec![0u64; payload.len() / 8 + 4];
        let base = buf.as_ptr() as usize;
        let start = (rem + 16 - base % 16) % 16;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        bytes[start..start + payload.len()].copy_from_slice(payload);
        Placed {
            buf,
            start,
            len: payload.len(),
        }
    }
    fn bytes(&self) -> &[u8] {
        let b: &[u8] = bytemuck::cast_slice(&self.buf);
        &b[self.start..self.start + self.len]
    }
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn le_f16(v: &[f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

#[test]
fn f32_from_8_but_not_16_aligned_bytes() {
    let mut rng = Rng::new(30);
    for k in levels() {
        for &d in &[1usize, 5, 16, 31, 128, 384, 768] {
            let n = 13;
            let q = rng.vec_f32(d);
            let block = rng.vec_f32(n * d);
            for rem in [8usize, 1, 2, 3] {
                let placed = Placed::new(&le_f32(&block), rem);
                let raw = placed.bytes();
                assert_eq!(raw.as_ptr() as usize % 16, rem);
                let view = bytes::f32_from_le_bytes(raw).unwrap();
                assert_eq!(
                    matches!(view, Cow::Borrowed(_)),
                    rem % 4 == 0,
                    "borrowed iff 4-aligned"
                );
                assert_eq!(&*view, &block[..]);
                // Pair kernels on rows read straight out of the 8-mod-16 buffer.
                for (row, want) in view.chunks(d).zip(block.chunks(d)) {
                    assert_eq!(k.dot_f32(&q, row), k.dot_f32(&q, want));
                    assert_eq!(k.cosine_f32(&q, row), k.cosine_f32(&q, want));
                    assert_eq!(k.l2sq_f32(&q, row), k.l2sq_f32(&q, want));
                }
                for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
                    let mut want = vec![0f32; n];
                    let mut got = vec![0f32; n];
                    k.distances_f32(metric, &q, &block, None, &mut want)
                        .unwrap();
                    k.distances_f32_bytes(metric, &q, raw, None, &mut got)
                        .unwrap();
                    assert_eq!(
                        got,
                        want,
                        "{metric:?} d={d} at address ≡ {rem} mod 16 ({})",
                        k.isa().name()
                    );
                }
            }
        }
    }
}

#[test]
fn f32_bytes_in_several_batches() {
    // Misaligned blocks are copied in batches of 16 Ki elements: cross them.
    let k = kernels::Kernels::detect();
    let mut rng = Rng::new(31);
    let (d, n) = (300, 200);
    let q = rng.vec_f32(d);
    let block = rng.vec_f32(n * d);
    let norms: Vec<f32> = block.chunks(d).map(|r| k.norm_f32(r)).collect();
    let placed = Placed::new(&le_f32(&block), 3);
    let mut want = vec![0f32; n];
    let mut got = vec![0f32; n];
    k.distances_f32(Metric::Cosine, &q, &block, Some(&norms), &mut want)
        .unwrap();
    k.distances_f32_bytes(Metric::Cosine, &q, placed.bytes(), Some(&norms), &mut got)
        .unwrap();
    assert_eq!(got, want);
}

#[test]
fn f16_from_unaligned_bytes() {
    let mut rng = Rng::new(32);
    for k in levels() {
        let (d, n) = (100, 9);
        let q = rng.vec_f16(d);
        let block = rng.vec_f16(n * d);
        for rem in [8usize, 2, 1] {
            let placed = Placed::new(&le_f16(&block), rem);
            let view = bytes::f16_from_le_bytes(placed.bytes()).unwrap();
            assert_eq!(matches!(view, Cow::Borrowed(_)), rem % 2 == 0);
            assert_eq!(&*view, &block[..]);
            let mut want = vec![0f32; n];
            let mut got = vec![0f32; n];
            k.distances_f16(Metric::Cosine, &q, &block, None, &mut want)
                .unwrap();
            k.distances_f16_bytes(Metric::Cosine, &q, placed.bytes(), None, &mut got)
                .unwrap();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn byte_lengths_are_checked() {
    assert_eq!(
        bytes::f32_from_le_bytes(&[0; 7]).unwrap_err(),
        Error::ByteLength {
            elem_size: 4,
            len: 7
        }
    );
    assert_eq!(
        bytes::f16_from_le_bytes(&[0; 3]).unwrap_err(),
        Error::ByteLength {
            elem_size: 2,
            len: 3
        }
    );
    assert!(bytes::f32_from_le_bytes(&[]).unwrap().is_empty());
    assert_eq!(bytes::i8_from_bytes(&[0xff, 1, 0x80]), &[-1i8, 1, -128]);
    let one = 1.5f32.to_le_bytes();
    assert_eq!(&*bytes::f32_from_le_bytes(&one).unwrap(), &[1.5f32]);
}
