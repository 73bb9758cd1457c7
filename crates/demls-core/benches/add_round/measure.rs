//! Measuring: a counting global allocator and the thread CPU clock.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes, for the memory-per-member figures.
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is only
// arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

pub(crate) fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Heap bytes released by dropping `value`.
pub(crate) fn heap_of<T>(value: T) -> usize {
    let before = live_bytes();
    drop(value);
    before.saturating_sub(live_bytes())
}

/// CPU time of the calling thread, in nanoseconds.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub(crate) fn cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on 64-bit
    // Linux), and the clock id is a constant of the Linux ABI.
    let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// Elsewhere: wall time (the bench then needs an otherwise idle machine).
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub(crate) fn cpu_ns() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    let start = *START.get_or_init(Instant::now);
    #[allow(clippy::disallowed_methods)]
    let ns = start.elapsed().as_nanos() as u64;
    ns
}

/// Adds the CPU time of `f` to `acc`.
pub(crate) fn timed<T>(acc: &mut u64, f: impl FnOnce() -> T) -> T {
    let start = cpu_ns();
    let out = f();
    *acc += cpu_ns() - start;
    out
}

/// CPU nanoseconds of one round, per role.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Roles {
    pub(crate) steward: u64,
    /// The ordinary member's: the sum of its phases.
    pub(crate) member: u64,
    /// The ordinary member's phases: key package and proposal; its own vote; the others'
    /// votes; evidence, commit and welcome.
    pub(crate) phases: [u64; 4],
    pub(crate) joiner: u64,
}

impl Roles {
    pub(crate) fn finish(mut self) -> Self {
        self.member = self.phases.iter().sum();
        self
    }

    pub(crate) fn total(&self, n: usize) -> u64 {
        self.steward + (n as u64 - 1) * self.member + self.joiner
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

pub(crate) fn median_roles(rounds: &[Roles]) -> Roles {
    Roles {
        steward: median(rounds.iter().map(|r| r.steward).collect()),
        member: median(rounds.iter().map(|r| r.member).collect()),
        phases: std::array::from_fn(|k| median(rounds.iter().map(|r| r.phases[k]).collect())),
        joiner: median(rounds.iter().map(|r| r.joiner).collect()),
    }
}
