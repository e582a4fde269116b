//! A tiny deterministic generator (xorshift) for the randomised tests, so a
//! failure reproduces from its seed.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn pick(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
