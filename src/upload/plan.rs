//! The real-time part planner (c2c-api.md section 14.1): a pure function of
//! (part number, bytes before the part, config).
//!
//! Part sizes start small, so the tail that remains after the last frame of a short clip is
//! short, and grow in proportion to the bytes already planned (`offset / growth_divisor`), so a
//! recording of any length up to 5 TiB fits in 10,000 parts. With the defaults (5 MiB first
//! parts, divisor 512, cap 5 GiB) the first 2.5 GiB go in 5 MiB parts, a 5 TiB recording needs
//! about 4,600 parts, and every non-final part lies in [5 MiB, 5 GiB].
//!
//! Cutting rule (used by every source): part `n` starting at `offset` is cut as a non-final part
//! only when *more* than `part_size(n, offset)` bytes exist past `offset`; so at finish the final
//! part holds between 1 and `part_size` bytes, and is empty only when the whole file is empty.

/// 5 MiB: the smallest non-final part S3 accepts.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// 5 GiB: the largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// At most this many parts per asset.
pub const MAX_PARTS: u32 = 10_000;
/// 5 TiB: the largest asset.
pub const MAX_TOTAL_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// Settings of the planner. `Default` gives the values described in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    /// Size of the first parts (at least 5 MiB).
    pub first_part_size: u64,
    /// Parts grow to `bytes_so_far / growth_divisor` once that exceeds `first_part_size`.
    pub growth_divisor: u64,
    /// Largest part (at most 5 GiB). A source that buffers parts in memory lowers it so that a part
    /// fits in the buffer budget; the largest recording is then smaller than 5 TiB.
    pub max_part_size: u64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig { first_part_size: MIN_PART_SIZE, growth_divisor: 512, max_part_size: MAX_PART_SIZE }
    }
}

/// One planned part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPart {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub is_final: bool,
}

impl PlanConfig {
    /// Checks the settings: sizes within S3's limits, and growth fast enough that 5 TiB (or, with a
    /// lower `max_part_size`, as much as that cap allows) fits in 10,000 parts.
    pub fn validate(&self) -> Result<(), String> {
        if self.first_part_size < MIN_PART_SIZE || self.first_part_size > MAX_PART_SIZE {
            return Err(format!("first part size {} outside [5 MiB, 5 GiB]", self.first_part_size));
        }
        if self.max_part_size < self.first_part_size || self.max_part_size > MAX_PART_SIZE {
            return Err(format!("max part size {} outside [first part size, 5 GiB]", self.max_part_size));
        }
        if self.growth_divisor == 0 || self.growth_divisor > 1024 {
            return Err(format!("growth divisor {} outside [1, 1024]", self.growth_divisor));
        }
        Ok(())
    }

    /// The largest recording this plan can hold in 10,000 parts.
    pub fn capacity(&self) -> u64 {
        let mut offset = 0u64;
        for n in 1..MAX_PARTS {
            offset += self.part_size(n, offset);
            if offset >= MAX_TOTAL_SIZE {
                return MAX_TOTAL_SIZE;
            }
        }
        // part 10,000 may be final only; it can be as large as S3 allows (see `final_part`)
        (offset + MAX_PART_SIZE).min(MAX_TOTAL_SIZE)
    }

    /// Size of part `number` (1-based) that starts `offset` bytes into the recording, when it is
    /// not the final part. Pure; also valid for the final part as an upper bound.
    pub fn part_size(&self, number: u32, offset: u64) -> u64 {
        let _ = number; // the size depends on the bytes planned before it, not on the number
        let grown = (offset / self.growth_divisor.max(1)) / MIB * MIB;
        grown.max(self.first_part_size).min(self.max_part_size)
    }

    /// Whether part `number` starting at `offset` is to be cut as a non-final part now that
    /// `available` bytes exist. Part 10,000 is never cut as non-final.
    pub fn should_cut(&self, number: u32, offset: u64, available: u64) -> Option<u64> {
        if number >= MAX_PARTS {
            return None;
        }
        let size = self.part_size(number, offset);
        if available > offset && available - offset > size {
            Some(size)
        } else {
            None
        }
    }

    /// The final part, given the whole size, when parts up to `number - 1` (ending at `offset`)
    /// were cut. `Err` when the rest does not fit in one final part (more than 10,000 parts needed,
    /// or a part above 5 GiB) or the total exceeds 5 TiB.
    pub fn final_part(&self, number: u32, offset: u64, total: u64) -> Result<PlannedPart, String> {
        if total > MAX_TOTAL_SIZE {
            return Err(format!("recording of {total} bytes exceeds the 5 TiB limit"));
        }
        if total < offset {
            return Err(format!("final size {total} is below the {offset} bytes already sent"));
        }
        let size = total - offset;
        let limit = if number >= MAX_PARTS { MAX_PART_SIZE } else { self.part_size(number, offset) };
        if size > limit || number > MAX_PARTS {
            return Err(format!("recording of {total} bytes does not fit in {MAX_PARTS} parts with this plan"));
        }
        if size == 0 && number != 1 {
            return Err("empty final part after other parts".into());
        }
        Ok(PlannedPart { number, offset, size, is_final: true })
    }

    /// The tail of the recording at its end: the bytes after the last cut part, split into up to
    /// `split` parts (each non-final one at least `first_part_size`) so they go out in parallel and
    /// the time from the end of the recording to a complete asset stays short even when parts have
    /// grown large. `split` <= 1 gives the single final part of [`final_part`](Self::final_part).
    pub fn final_parts(&self, number: u32, offset: u64, total: u64, split: u32) -> Result<Vec<PlannedPart>, String> {
        let last = self.final_part(number, offset, total)?;
        let rest = total - offset;
        let room = MAX_PARTS.saturating_sub(number) + 1;
        let k = (rest / self.first_part_size).min(split.max(1) as u64).min(room as u64).max(1);
        if k <= 1 {
            return Ok(vec![last]);
        }
        let each = rest / k; // >= first_part_size >= 5 MiB
        let mut out = Vec::with_capacity(k as usize);
        let mut off = offset;
        for i in 0..k {
            let size = if i + 1 == k { total - off } else { each };
            out.push(PlannedPart { number: number + i as u32, offset: off, size, is_final: i + 1 == k });
            off += size;
        }
        Ok(out)
    }

    /// The whole plan for a recording of `total` bytes (used for complete files).
    pub fn plan(&self, total: u64) -> Result<Vec<PlannedPart>, String> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1u32;
        while let Some(size) = self.should_cut(number, offset, total) {
            parts.push(PlannedPart { number, offset, size, is_final: false });
            offset += size;
            number += 1;
        }
        parts.push(self.final_part(number, offset, total)?);
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(plan: &[PlannedPart], total: u64) {
        let mut off = 0;
        for (i, p) in plan.iter().enumerate() {
            assert_eq!(p.number as usize, i + 1);
            assert_eq!(p.offset, off);
            assert!(p.size <= MAX_PART_SIZE);
            if i + 1 < plan.len() {
                assert!(!p.is_final);
                assert!(p.size >= MIN_PART_SIZE);
            } else {
                assert!(p.is_final);
            }
            off += p.size;
        }
        assert_eq!(off, total);
        assert!(plan.len() <= MAX_PARTS as usize);
    }

    #[test]
    fn empty_file_is_one_empty_final_part() {
        let p = PlanConfig::default().plan(0).unwrap();
        assert_eq!(p, vec![PlannedPart { number: 1, offset: 0, size: 0, is_final: true }]);
    }

    #[test]
    fn exactly_one_part() {
        let p = PlanConfig::default().plan(MIN_PART_SIZE).unwrap();
        assert_eq!(p, vec![PlannedPart { number: 1, offset: 0, size: MIN_PART_SIZE, is_final: true }]);
        let p = PlanConfig::default().plan(1).unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn one_byte_past_a_part() {
        let p = PlanConfig::default().plan(MIN_PART_SIZE + 1).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], PlannedPart { number: 1, offset: 0, size: MIN_PART_SIZE, is_final: false });
        assert_eq!(p[1], PlannedPart { number: 2, offset: MIN_PART_SIZE, size: 1, is_final: true });
        let p = PlanConfig::default().plan(2 * MIN_PART_SIZE).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].size, MIN_PART_SIZE);
        check(&p, 2 * MIN_PART_SIZE);
    }

    #[test]
    fn small_parts_first_then_growth() {
        let cfg = PlanConfig::default();
        assert_eq!(cfg.part_size(1, 0), MIN_PART_SIZE);
        assert_eq!(cfg.part_size(400, 2 * 1024 * MIB), MIN_PART_SIZE);
        assert!(cfg.part_size(900, 10 * 1024 * MIB) > MIN_PART_SIZE);
        assert_eq!(cfg.part_size(5000, 4 * 1024 * 1024 * MIB), MAX_PART_SIZE);
        let p = cfg.plan(200 * 1000 * 1000).unwrap();
        assert_eq!(p.len(), 39); // 38 full 5 MiB parts + a final
        check(&p, 200 * 1000 * 1000);
    }

    #[test]
    fn five_tib_fits() {
        let cfg = PlanConfig::default();
        let p = cfg.plan(MAX_TOTAL_SIZE).unwrap();
        check(&p, MAX_TOTAL_SIZE);
        assert!(p.len() < 5000, "{} parts", p.len());
        assert_eq!(cfg.capacity(), MAX_TOTAL_SIZE);
        assert!(cfg.plan(MAX_TOTAL_SIZE + 1).is_err());
    }

    #[test]
    fn part_10000_is_final_only() {
        // a plan that cannot grow (5 MiB parts only) reaches part 10,000
        let cfg = PlanConfig { first_part_size: MIN_PART_SIZE, growth_divisor: 1024, max_part_size: MIN_PART_SIZE };
        assert!(cfg.validate().is_ok());
        let full = 9_999 * MIN_PART_SIZE;
        assert_eq!(cfg.should_cut(MAX_PARTS, full, full + 10 * MIN_PART_SIZE), None);
        let p = cfg.plan(full + MIN_PART_SIZE + 7).unwrap();
        assert_eq!(p.len(), MAX_PARTS as usize);
        assert_eq!(p.last().unwrap().size, MIN_PART_SIZE + 7);
        check(&p, full + MIN_PART_SIZE + 7);
        assert_eq!(cfg.capacity(), full + MAX_PART_SIZE);
        assert!(cfg.plan(full + MAX_PART_SIZE + 1).is_err());
        assert!(cfg.final_part(MAX_PARTS + 1, full, full + 1).is_err());
    }

    #[test]
    fn tail_is_split_for_parallel_upload() {
        let cfg = PlanConfig::default();
        // short clips: the tail is at most one 5 MiB part, so one final part
        assert_eq!(cfg.final_parts(3, 10 * MIB, 15 * MIB, 4).unwrap().len(), 1);
        assert_eq!(cfg.final_parts(3, 10 * MIB, 10 * MIB + 1, 4).unwrap().len(), 1);
        assert_eq!(
            cfg.final_parts(1, 0, 0, 4).unwrap(),
            vec![PlannedPart { number: 1, offset: 0, size: 0, is_final: true }]
        );
        // a long recording's 200 MiB tail goes out as 4 parts of 50 MiB
        let off = 100 * 1024 * MIB;
        assert!(cfg.part_size(2000, off) > 150 * MIB);
        let tail = cfg.final_parts(2000, off, off + 200 * MIB, 4).unwrap();
        assert_eq!(tail.len(), 4);
        let mut o = off;
        for (i, p) in tail.iter().enumerate() {
            assert_eq!((p.number, p.offset), (2000 + i as u32, o));
            assert_eq!(p.is_final, i == 3);
            assert!(p.size >= MIN_PART_SIZE);
            o += p.size;
        }
        assert_eq!(o, off + 200 * MIB);
        assert_eq!(cfg.final_parts(2000, off, off + 200 * MIB, 1).unwrap().len(), 1);
        // 12 MiB: two parts (6 + 6), never a non-final part under 5 MiB
        let t = cfg.final_parts(600, off, off + 12 * MIB, 4).unwrap();
        assert_eq!(t.iter().map(|p| p.size).collect::<Vec<_>>(), vec![6 * MIB, 6 * MIB]);
        // no room past part 10,000
        assert_eq!(cfg.final_parts(MAX_PARTS, off, off + 100 * MIB, 4).unwrap().len(), 1);
        assert_eq!(cfg.final_parts(MAX_PARTS - 1, off, off + 100 * MIB, 4).unwrap().len(), 2);
        assert!(cfg.final_parts(5, 0, 6 * MIB, 4).is_err()); // more than one part's worth left uncut
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert!(PlanConfig { first_part_size: MIN_PART_SIZE - 1, ..Default::default() }.validate().is_err());
        assert!(PlanConfig { max_part_size: MAX_PART_SIZE + 1, ..Default::default() }.validate().is_err());
        assert!(PlanConfig { growth_divisor: 0, ..Default::default() }.validate().is_err());
        assert!(PlanConfig { growth_divisor: 4096, ..Default::default() }.validate().is_err());
        // the slowest growth allowed still holds 5 TiB
        let slow = PlanConfig { growth_divisor: 1024, ..Default::default() };
        assert_eq!(slow.capacity(), MAX_TOTAL_SIZE);
    }

    #[test]
    fn cut_rule_needs_a_byte_past_the_part() {
        let cfg = PlanConfig::default();
        assert_eq!(cfg.should_cut(1, 0, MIN_PART_SIZE), None);
        assert_eq!(cfg.should_cut(1, 0, MIN_PART_SIZE + 1), Some(MIN_PART_SIZE));
        assert_eq!(cfg.should_cut(2, MIN_PART_SIZE, MIN_PART_SIZE + 1), None);
    }
}
