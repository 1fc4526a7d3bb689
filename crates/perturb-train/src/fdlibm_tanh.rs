//! tanh of f32 values with fdlibm's arithmetic, vectorised.
//!
//! The additive attention takes a tanh of every (perturbation, gene, attention unit):
//! 9.7 million per training step at 19,000 genes, where the C library's `tanhf`, one call
//! per value, was half of APP's training time. This computes the same function as
//! fdlibm's `tanhf` and `expm1f` (the code glibc's generic float `tanhf` is), operation
//! for operation in IEEE single precision, but branch-free across the lanes of a vector:
//! every path a value can take is computed and the one fdlibm would have taken is kept.
//! The results are therefore those of glibc's `tanhf` bit for bit (checked exhaustively
//! against glibc 2.36, over all 2³² inputs), so no model or metric changes, and they no
//! longer depend on the C library of the machine that runs them.
//!
//! The algorithm and its constants are fdlibm's:
//!
//! > Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//! > Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy,
//! > modify, and distribute this software is freely granted, provided that this notice
//! > is preserved.

const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
/// expm1's scaled rational coefficients Q1..Q5.
const Q: [f32; 5] =
    [f32::from_bits(0xbd08_8889), f32::from_bits(0x3ad0_0d01), f32::from_bits(0xb8a6_70cd), f32::from_bits(0x3686_7e54), f32::from_bits(0xb457_edbb)];

/// Bit patterns of |x| bounding fdlibm's cases.
const ONE: u32 = 0x3f80_0000;
/// Below 2⁻⁵⁵, tanh(x) = x · (1 + x).
const TINY: u32 = 0x2400_0000;
/// From 22 on, tanh(x) = ±1.
const SATURATED: u32 = 0x41b0_0000;
const INFINITE: u32 = 0x7f80_0000;

/// Lanes one vector step handles; 8 fills an AVX2 register.
const LANES: usize = 8;

#[inline(always)]
fn pick(condition: bool, yes: f32, no: f32) -> f32 {
    if condition {
        yes
    } else {
        no
    }
}

#[inline(always)]
fn pick_int(condition: bool, yes: i32, no: i32) -> i32 {
    if condition {
        yes
    } else {
        no
    }
}

/// fdlibm's expm1f reduced to `u` of magnitude `hx` (its bit pattern without the sign),
/// returning (x, c, k, hxs, e): the reduced argument, its correction, the power of two
/// taken out, and the rational approximation's terms, for the arguments tanh passes:
/// u in [2, 44) (|x| >= 1) or u in (−2, 0] (|x| < 1).
#[inline(always)]
fn expm1_terms(u: f32, hx: u32) -> (f32, f32, i32, f32, f32) {
    let negative = u < 0.0;
    // |u| > ln2 / 2 is reduced by k · ln2; below 1.5 ln2 (only negative u here) k = -1.
    let reduce = hx > 0x3eb1_7218;
    let near = hx < 0x3f85_1592;
    // C converts by truncation toward zero, as `as` does within range.
    let k_far = (INV_LN2 * u + pick(negative, -0.5, 0.5)) as i32;
    let t_far = k_far as f32;
    let hi = pick(near, u + LN2_HI, u - t_far * LN2_HI);
    let lo = pick(near, -LN2_LO, t_far * LN2_LO);
    let k = pick_int(reduce, pick_int(near, -1, k_far), 0);
    let reduced = hi - lo;
    let x = pick(reduce, reduced, u);
    let c = pick(reduce, (hi - reduced) - lo, 0.0);
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let r1 = 1.0 + hxs * (Q[0] + hxs * (Q[1] + hxs * (Q[2] + hxs * (Q[3] + hxs * Q[4]))));
    let t = 3.0 - r1 * hfx;
    let e = hxs * ((r1 - t) / (6.0 - x * t));
    (x, c, k, hxs, e)
}

/// `y` times 2^k by adding k to its exponent field, as fdlibm does.
#[inline(always)]
fn scale(y: f32, k: i32) -> f32 {
    f32::from_bits((y.to_bits() as i32).wrapping_add(k.wrapping_shl(23)) as u32)
}

/// fdlibm's expm1f(u) for the arguments tanh passes (see [`expm1_terms`]).
#[inline(always)]
fn expm1(u: f32) -> f32 {
    let hx = u.to_bits() & 0x7fff_ffff;
    let (x, c, k, hxs, e) = expm1_terms(u, hx);
    let at_zero = x - (x * e - hxs);
    let e = (x * (e - c) - c) - hxs;
    let at_minus_one = 0.5 * (x - e) - 0.5;
    // 1 − 2⁻ᵏ below k = 23, 2⁻ᵏ from there (each k clamped to where its form is used).
    let one_less = f32::from_bits(0x3f80_0000 - (0x0100_0000 >> k.clamp(0, 22)) as u32);
    let two_less = f32::from_bits(((0x7f - k.clamp(23, 127)) << 23) as u32);
    let far = k <= -2 || k > 56;
    let y = pick(far, 1.0 - (e - x), pick(k < 23, one_less - (e - x), (x - (e + two_less)) + 1.0));
    let y = scale(y, k);
    let y = pick(far, y - 1.0, y);
    let value = pick(k == 0, at_zero, pick(k == -1, at_minus_one, y));
    // Below 2⁻²⁵, u itself.
    pick(hx < 0x3300_0000, u, value)
}

/// fdlibm's tanhf(x), for any x.
#[inline(always)]
fn tanh_any(x: f32) -> f32 {
    let ix = x.to_bits() & 0x7fff_ffff;
    let magnitude = f32::from_bits(ix);
    let large = ix >= ONE;
    let t = expm1(pick(large, 2.0 * magnitude, -2.0 * magnitude));
    // 1 − 2 / (t + 2) from |x| = 1 on, −t / (t + 2) below.
    let q = pick(large, 2.0, -t) / (t + 2.0);
    let z = pick(ix < SATURATED, pick(large, 1.0 - q, q), 1.0);
    let z = pick(x.is_sign_negative(), -z, z);
    let z = pick(ix < TINY, x * (1.0 + x), z);
    let z = pick(ix == INFINITE, pick(x.is_sign_negative(), -1.0, 1.0), z);
    pick(ix > INFINITE, x + x, z)
}

/// fdlibm's tanhf(x) for 2⁻⁵⁵ <= |x| < 1, where the attention's values mostly are: the
/// paths of [`tanh_any`] these reach, and no others (half its work).
#[inline(always)]
fn tanh_moderate(x: f32) -> f32 {
    let ix = x.to_bits() & 0x7fff_ffff;
    let u = -2.0 * f32::from_bits(ix);
    // |u| = 2|x|: one more in the exponent field.
    let (x_r, c, k, hxs, e) = expm1_terms(u, ix + 0x0080_0000);
    let at_zero = x_r - (x_r * e - hxs);
    let e = (x_r * (e - c) - c) - hxs;
    let at_minus_one = 0.5 * (x_r - e) - 0.5;
    // Here k is 0, −1, −2 or −3, the last two fdlibm's "far" form.
    let far = scale(1.0 - (e - x_r), k) - 1.0;
    let t = pick(k == 0, at_zero, pick(k == -1, at_minus_one, far));
    let t = pick(ix + 0x0080_0000 < 0x3300_0000, u, t);
    let z = -t / (t + 2.0);
    pick(x.is_sign_negative(), -z, z)
}

fn is_moderate(x: f32) -> bool {
    let ix = x.to_bits() & 0x7fff_ffff;
    (TINY..ONE).contains(&ix)
}

/// Vector steps of [`LANES`] values: the moderate form where every lane is moderate.
#[inline(always)]
fn tanh_lanes(xs: &[f32], out: &mut [f32]) {
    let (mut x_chunks, mut out_chunks) = (xs.chunks_exact(LANES), out.chunks_exact_mut(LANES));
    for (x, y) in (&mut x_chunks).zip(&mut out_chunks) {
        if x.iter().all(|&v| is_moderate(v)) {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = tanh_moderate(x);
            }
        } else {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = tanh_any(x);
            }
        }
    }
    for (y, &x) in out_chunks.into_remainder().iter_mut().zip(x_chunks.remainder()) {
        *y = tanh_any(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_lanes_avx2(xs: &[f32], out: &mut [f32]) {
    // The same code compiled for 8-wide vectors. No fused multiply-add is enabled (and
    // Rust never contracts a · b + c into one), so every lane rounds as fdlibm does.
    tanh_lanes(xs, out)
}

/// Values from which [`tanh_into`] shares the work among the cores: a thread's start costs
/// about as much as 10,000 values.
const PARALLEL_FROM: usize = 1 << 18;

/// tanh of every value of `xs` into `out` (of the same length), as glibc's `tanhf`.
pub fn tanh_into(xs: &[f32], out: &mut [f32]) {
    assert_eq!(xs.len(), out.len(), "tanh_into: one output per input");
    let threads = if xs.len() >= PARALLEL_FROM { crate::cores() } else { 1 };
    if threads > 1 {
        // Whole vector steps per thread, so each value is computed as it would be alone.
        let share = xs.len().div_ceil(threads).next_multiple_of(LANES);
        std::thread::scope(|scope| {
            for (x, y) in xs.chunks(share).zip(out.chunks_mut(share)) {
                scope.spawn(move || tanh_serial(x, y));
            }
        });
        return;
    }
    tanh_serial(xs, out)
}

fn tanh_serial(xs: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature the function enables.
        unsafe { tanh_lanes_avx2(xs, out) };
        return;
    }
    tanh_lanes(xs, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `step`-th bit pattern from `first`.
    fn patterns(first: u32, step: u32) -> Vec<f32> {
        (0..=u32::MAX / step).map(|i| f32::from_bits(first.wrapping_add(i * step))).collect()
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// FNV-1a over the outputs' bits (NaNs as one pattern).
    fn fingerprint(ys: &[f32]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for y in ys {
            let bits = if y.is_nan() { 0x7fc0_0000 } else { y.to_bits() };
            for b in bits.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    #[test]
    fn equals_glibc_tanhf_over_a_spread_of_all_bit_patterns() {
        // An odd stride visits every exponent, sign and case boundary's neighbourhood. The
        // fingerprint is that of glibc 2.36's tanhf over the same inputs (Debian 12), so
        // the test holds on a machine whose C library computes tanh otherwise.
        let xs = patterns(12_345, 4_099);
        assert_eq!(xs.len(), 1_047_809);
        let mut ours = vec![0.0; xs.len()];
        tanh_into(&xs, &mut ours);
        assert_eq!(fingerprint(&ours), 0x68c0_5f7c_ad0b_80df);
        // And within fdlibm's error bound of the exact value, for a readable failure.
        for (x, y) in xs.iter().zip(&ours).filter(|(x, _)| x.is_finite() && x.abs() > 1e-30) {
            let exact = f64::from(*x).tanh() as f32;
            let ulps = (y.to_bits() as i64 - exact.to_bits() as i64).abs();
            assert!(ulps <= 2, "tanh({x:e}) = {y:e}, {ulps} units in the last place from {exact:e}");
        }
    }

    #[test]
    fn the_case_boundaries_and_special_values() {
        let mut xs = vec![0.0, -0.0, 1.0, -1.0, 22.0, -22.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-40];
        for bits in [ONE, TINY, SATURATED, 0x3eb1_7218 - 0x0080_0000, 0x3f85_1592 - 0x0080_0000, 0x3300_0000 - 0x0080_0000] {
            for d in -3i32..=3 {
                let b = (bits as i32 + d) as u32;
                xs.extend([f32::from_bits(b), -f32::from_bits(b)]);
            }
        }
        let mut ours = vec![0.0; xs.len()];
        tanh_into(&xs, &mut ours);
        assert!(same(ours[0], 0.0) && same(ours[1], -0.0) && ours[6] == 1.0 && ours[7] == -1.0 && ours[8].is_nan());
        assert!(ours[4] == 1.0 && ours[5] == -1.0, "tanh(±22) rounds to ±1");
        // Values in runs of 8 (the vector step) equal each computed alone (the remainder).
        for (x, y) in xs.iter().zip(&ours) {
            let mut single = [0.0];
            tanh_into(&[*x], &mut single);
            assert!(same(single[0], *y), "{x:e}: alone {:e}, in a vector {y:e}", single[0]);
        }
    }

    #[test]
    fn the_moderate_form_is_the_general_one_where_it_applies() {
        let xs: Vec<f32> = patterns(7, 65_537).into_iter().filter(|&x| is_moderate(x)).collect();
        assert!(xs.len() > 10_000);
        for &x in &xs {
            assert!(same(tanh_moderate(x), tanh_any(x)), "{x:e}");
        }
    }
}
