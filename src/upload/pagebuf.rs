//! Part buffers for pushed bytes, mapped straight from the kernel.
//!
//! A part buffer is megabytes long and lives for one part. Taken from malloc, glibc raises its mmap
//! threshold after the first one is freed, later buffers come from the heap, and freed heap holes
//! stay resident: the bench measured peak RSS growing from 40 to 60 MiB between a 64 MiB and a
//! 4 GiB recording with a 32 MiB budget. An anonymous mapping only costs the pages written into it
//! and all of them go back to the system at `munmap`, so RSS follows the engine's own byte count.

use std::ops::Deref;

/// A byte buffer of fixed capacity (chosen once, at the first `reserve_exact`) that only grows by
/// appending.
pub(crate) struct PartBuf {
    repr: Repr,
    len: usize,
}

enum Repr {
    Empty,
    #[cfg(unix)]
    Mapped {
        ptr: *mut u8,
        cap: usize,
    },
    /// Where mmap is unavailable or refused.
    Heap(Vec<u8>),
}

// SAFETY: the mapping is owned by this value alone; it is written only through `&mut self` and read
// through `&self`, like a Vec<u8>.
unsafe impl Send for PartBuf {}
unsafe impl Sync for PartBuf {}

impl PartBuf {
    pub(crate) const fn new() -> Self {
        PartBuf { repr: Repr::Empty, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        match &self.repr {
            Repr::Empty => 0,
            #[cfg(unix)]
            Repr::Mapped { cap, .. } => *cap,
            Repr::Heap(v) => v.capacity(),
        }
    }

    /// Room for `additional` more bytes. Maps them when the buffer is empty; otherwise moves the
    /// bytes into a larger buffer (the engine sizes a buffer once per part, so this is rare).
    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        let need = self.len.checked_add(additional).expect("part buffer size overflows usize");
        if need <= self.capacity() {
            return;
        }
        let mut bigger = PartBuf { repr: Self::alloc(need), len: 0 };
        bigger.append(self);
        *self = bigger;
    }

    /// Appends `data`, growing the buffer if it must.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        if self.capacity() - self.len < data.len() {
            self.reserve_exact(data.len().max(self.len));
        }
        self.append(data);
    }

    fn append(&mut self, data: &[u8]) {
        match &mut self.repr {
            Repr::Empty => debug_assert!(data.is_empty()),
            #[cfg(unix)]
            Repr::Mapped { ptr, cap } => {
                assert!(*cap - self.len >= data.len());
                // SAFETY: the range [len, len + data.len()) lies inside the mapping (checked above) and
                // cannot overlap `data`, which the caller holds by shared reference while we hold self
                // mutably.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.add(self.len), data.len()) };
            }
            Repr::Heap(v) => v.extend_from_slice(data),
        }
        self.len += data.len();
    }

    fn alloc(cap: usize) -> Repr {
        #[cfg(unix)]
        {
            // SAFETY: a fresh private anonymous mapping; the result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    cap,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Repr::Mapped { ptr: ptr.cast(), cap };
            }
        }
        Repr::Heap(Vec::with_capacity(cap))
    }
}

impl Default for PartBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for PartBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Empty => &[],
            // SAFETY: the first `len` bytes of the mapping were written by `append`.
            #[cfg(unix)]
            Repr::Mapped { ptr, .. } => unsafe { std::slice::from_raw_parts(*ptr, self.len) },
            Repr::Heap(v) => v,
        }
    }
}

impl Drop for PartBuf {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Repr::Mapped { ptr, cap } = self.repr {
            // SAFETY: the mapping was made by `alloc` with this length and is not used after this.
            unsafe { libc::munmap(ptr.cast(), cap) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PartBuf;

    #[test]
    fn append_read_and_grow() {
        let mut b = PartBuf::new();
        assert_eq!(b.len(), 0);
        assert_eq!(&b[..], b"");
        b.reserve_exact(10);
        assert!(b.capacity() >= 10);
        b.extend_from_slice(b"hello");
        b.extend_from_slice(b" world");
        assert_eq!(&b[..], b"hello world");
        // past the first mapping: moved into a bigger one, bytes kept
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        b.extend_from_slice(&big);
        assert_eq!(b.len(), 11 + big.len());
        assert_eq!(&b[..11], b"hello world");
        assert_eq!(&b[11..], &big[..]);
    }

    #[test]
    fn empty_buffer_without_reserve_grows() {
        let mut b = PartBuf::default();
        b.extend_from_slice(&[7u8; 100]);
        assert_eq!(&b[..], &[7u8; 100][..]);
        let taken = std::mem::take(&mut b);
        assert_eq!(b.len(), 0);
        assert_eq!(taken.len(), 100);
    }

    #[test]
    fn shared_between_threads() {
        let mut b = PartBuf::new();
        b.extend_from_slice(&[1, 2, 3]);
        let a = std::sync::Arc::new(b);
        let a2 = a.clone();
        let sum = std::thread::spawn(move || a2.iter().map(|&x| x as u32).sum::<u32>()).join().unwrap();
        assert_eq!(sum, 6);
    }
}
