//! Allocation of 16-bit Assigned Tunnel IDs and Assigned Session IDs
//! (RFC 2661 §4.4.3, §4.4.4: non-zero, chosen by the side that assigns them).
//!
//! Ids are drawn at random while the space is sparsely used, so that a blind
//! attacker cannot guess them. Past [`DENSE_THRESHOLD`] ids in use, a bitmap of
//! the 65,536 ids (8 KiB) with a 1,024-bit summary of full words is built once
//! and kept in step; a free id is then found in O(1) (at most 16 summary words
//! and one bitmap word are read), however full the space is. Sparse sets cost
//! no memory beyond the struct.

use rand_core::RngCore;

/// Number of ids in use past which the bitmap is built (about 6 % of the space).
pub const DENSE_THRESHOLD: usize = 4096;

/// Random draws tried against the in-use test before falling back to the bitmap.
const RANDOM_DRAWS: usize = 16;

const WORDS: usize = 65_536 / 64;

/// The 65,536-bit occupancy map and a summary with one bit per full word.
struct Bitmap {
    words: Box<[u64; WORDS]>,
    /// Bit `w` set: `words[w]` is all ones.
    full: [u64; WORDS / 64],
}

impl Bitmap {
    fn new() -> Self {
        let mut b = Self {
            words: Box::new([0; WORDS]),
            full: [0; WORDS / 64],
        };
        // Id 0 is reserved (RFC 2661 §3.1: tunnel 0 is "no tunnel yet").
        b.set(0);
        b
    }

    fn contains(&self, id: u16) -> bool {
        self.words[usize::from(id) / 64] & (1 << (id % 64)) != 0
    }

    fn set(&mut self, id: u16) {
        let w = usize::from(id) / 64;
        self.words[w] |= 1 << (id % 64);
        if self.words[w] == u64::MAX {
            self.full[w / 64] |= 1 << (w % 64);
        }
    }

    fn clear(&mut self, id: u16) {
        let w = usize::from(id) / 64;
        self.words[w] &= !(1 << (id % 64));
        self.full[w / 64] &= !(1 << (w % 64));
    }

    /// A free id at or after word `start_word` (wrapping), or `None` when all are used.
    fn find_free(&self, start_word: usize) -> Option<u16> {
        let start_word = start_word % WORDS;
        let groups = WORDS / 64;
        for i in 0..=groups {
            let g = (start_word / 64 + i) % groups;
            let mut free_words = !self.full[g];
            if i == 0 {
                // In the first group, only words at or after the start word.
                free_words &= u64::MAX << (start_word % 64);
            }
            if free_words != 0 {
                let w = g * 64 + free_words.trailing_zeros() as usize;
                let bit = (!self.words[w]).trailing_zeros() as usize;
                return Some((w * 64 + bit) as u16);
            }
        }
        None
    }
}

/// The set of ids in use in one id space (the endpoint's tunnels, or one
/// tunnel's sessions). The owner calls [`insert`](Self::insert) and
/// [`remove`](Self::remove) whenever its map of live ids changes.
#[derive(Default)]
pub struct IdSpace {
    len: usize,
    bitmap: Option<Bitmap>,
}

impl std::fmt::Debug for IdSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSpace")
            .field("len", &self.len)
            .field("dense", &self.bitmap.is_some())
            .finish()
    }
}

impl IdSpace {
    /// Ids in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no id is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record `id` as in use (idempotent per id is the caller's duty: call once per insertion).
    pub fn insert(&mut self, id: u16) {
        self.len += 1;
        if let Some(b) = &mut self.bitmap {
            b.set(id);
        }
    }

    /// Record `id` as free again.
    pub fn remove(&mut self, id: u16) {
        self.len = self.len.saturating_sub(1);
        if let Some(b) = &mut self.bitmap {
            b.clear(id);
        }
    }

    /// A free non-zero id, random while the space is sparse. `in_use` answers
    /// for the owner's map and `live` lists its ids (read once, when the
    /// bitmap is first built). `None` when all 65,535 ids are in use. The id
    /// is not reserved: the caller inserts it.
    pub fn alloc<I: Iterator<Item = u16>>(
        &mut self,
        rng: &mut dyn RngCore,
        in_use: impl Fn(u16) -> bool,
        live: impl FnOnce() -> I,
    ) -> Option<u16> {
        if self.bitmap.is_none() {
            if self.len < DENSE_THRESHOLD {
                for _ in 0..RANDOM_DRAWS {
                    let id = (rng.next_u32() & 0xffff) as u16;
                    if id != 0 && !in_use(id) {
                        return Some(id);
                    }
                }
            }
            let mut b = Bitmap::new();
            for id in live() {
                b.set(id);
            }
            self.bitmap = Some(b);
        }
        let b = self.bitmap.as_ref()?;
        for _ in 0..4 {
            let id = (rng.next_u32() & 0xffff) as u16;
            if !b.contains(id) {
                return Some(id);
            }
        }
        b.find_free((rng.next_u32() & 0xffff) as usize / 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashSet;

    fn fill(space: &mut IdSpace, set: &mut HashSet<u16>, rng: &mut StdRng, n: usize) {
        for _ in 0..n {
            let id = space
                .alloc(rng, |i| set.contains(&i), || set.iter().copied())
                .expect("an id is free");
            assert_ne!(id, 0);
            assert!(set.insert(id), "id {id} handed out twice");
            space.insert(id);
        }
    }

    #[test]
    fn all_65535_ids_then_none() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut space = IdSpace::default();
        let mut set = HashSet::new();
        fill(&mut space, &mut set, &mut rng, 65_535);
        assert_eq!(space.len(), 65_535);
        assert_eq!(
            space.alloc(&mut rng, |i| set.contains(&i), || set.iter().copied()),
            None
        );
        // Freeing one id makes exactly that id available.
        set.remove(&4242);
        space.remove(4242);
        assert_eq!(
            space.alloc(&mut rng, |i| set.contains(&i), || set.iter().copied()),
            Some(4242)
        );
    }

    #[test]
    fn bitmap_built_from_live_ids_when_dense() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut space = IdSpace::default();
        let mut set = HashSet::new();
        fill(&mut space, &mut set, &mut rng, DENSE_THRESHOLD + 10);
        assert!(space.bitmap.is_some());
        // Removing and re-filling keeps ids unique.
        let some: Vec<u16> = set.iter().copied().take(100).collect();
        for id in some {
            set.remove(&id);
            space.remove(id);
        }
        fill(&mut space, &mut set, &mut rng, 100);
        assert_eq!(set.len(), DENSE_THRESHOLD + 10);
    }

    #[test]
    fn find_free_wraps_around() {
        let mut b = Bitmap::new();
        for id in 1..=u16::MAX {
            b.set(id);
        }
        b.clear(5);
        assert_eq!(b.find_free(1000), Some(5));
        b.set(5);
        assert_eq!(b.find_free(3), None);
    }
}
