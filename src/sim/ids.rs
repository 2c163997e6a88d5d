//! Seeded, deterministic identifiers in Fly's formats: 14-hex machine ids, `vol_…`,
//! `vs_…`, ULID versions and event ids, lease nonces, machine names. A small
//! SplitMix64 generator keeps a run reproducible from its seed.

#[derive(Debug, Clone)]
pub(crate) struct SimRng(u64);

const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ADJECTIVES: &[&str] = &[
    "aged", "bold", "calm", "dark", "eager", "fancy", "gentle", "hidden", "icy", "jolly", "quiet",
    "rough", "silent", "tiny", "wild", "young",
];
const NOUNS: &[&str] = &[
    "thunder", "river", "forest", "meadow", "sun", "moon", "star", "wave", "cloud", "field",
    "hill", "lake", "snow", "wind", "fire", "stone",
];

impl SimRng {
    pub(crate) fn new(seed: u64) -> Self {
        SimRng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        // 53 random bits; the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    fn alnum(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| ALNUM.get(self.below(ALNUM.len())).copied().unwrap_or(b'0') as char)
            .collect()
    }

    /// `080155df097248`: 14 lowercase hex characters.
    pub(crate) fn machine_id(&mut self) -> String {
        format!("{:014x}", self.next_u64() & 0x00ff_ffff_ffff_ffff)
    }

    pub(crate) fn volume_id(&mut self) -> String {
        format!("vol_{}", self.alnum(16))
    }

    pub(crate) fn snapshot_id(&mut self) -> String {
        format!("vs_{}", self.alnum(20))
    }

    pub(crate) fn app_id(&mut self) -> String {
        self.alnum(16)
    }

    pub(crate) fn nonce(&mut self) -> String {
        format!("{:012x}", self.next_u64() & 0xffff_ffff_ffff)
    }

    /// A 26-character ULID stamped with the simulator time.
    pub(crate) fn ulid(&mut self, now_ms: u64) -> String {
        let random = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        ulid::Ulid::from_parts(now_ms, random).to_string()
    }

    /// `aged-thunder-7371`.
    pub(crate) fn machine_name(&mut self) -> String {
        let adj = ADJECTIVES
            .get(self.below(ADJECTIVES.len()))
            .unwrap_or(&"quiet");
        let noun = NOUNS.get(self.below(NOUNS.len())).unwrap_or(&"river");
        format!("{adj}-{noun}-{}", 1000 + self.below(9000))
    }

    /// A 6PN address.
    pub(crate) fn private_ip(&mut self) -> String {
        let v = self.next_u64();
        format!(
            "fdaa:0:3ec2:a7b:{:x}:{:x}:{:x}:2",
            (v >> 48) & 0xffff,
            (v >> 32) & 0xffff,
            (v >> 16) & 0xffff
        )
    }

    /// A volume zone like `119a`.
    pub(crate) fn zone(&mut self) -> String {
        format!("{:04x}", self.next_u64() & 0xffff)
    }

    pub(crate) fn request_id(&mut self, now_ms: u64) -> String {
        format!("{}-sim", self.ulid(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_fly_formats_and_are_deterministic() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        let id = a.machine_id();
        assert_eq!(id, b.machine_id());
        assert_eq!(id.len(), 14);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(a.volume_id().starts_with("vol_"));
        assert_eq!(a.ulid(1_700_000_000_000).len(), 26);
        let f = a.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
