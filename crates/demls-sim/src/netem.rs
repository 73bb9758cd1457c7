//! The network emulator (str0m's netem, TigerBeetle's packet simulator): decides, for each
//! delivery of a published packet over one link, whether and when it arrives. Partitions
//! and crashes are checked by the simulator; this module draws the per-link randomness.

use crate::rng::SimRng;
use crate::scenario::{Jitter, Link, Network, Partition};

/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;

/// The fate of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fate {
    /// Arrival times (ns, absolute), empty when lost for good. Two entries for a duplicate.
    pub arrivals: Vec<u64>,
    /// The direct delivery was lost (with repair it still arrives, later).
    pub lost: bool,
    /// A duplicate copy was added.
    pub duplicated: bool,
    /// The delivery was held back (reordered).
    pub reordered: bool,
}

/// A partition in force during `[start, end)` (ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePartition {
    /// Start, ns.
    pub start: u64,
    /// End (heal), ns.
    pub end: u64,
    /// Which nodes are on the first side.
    pub side: Side,
    /// Only traffic from the first side to the rest is blocked.
    pub one_way: bool,
}

/// Membership of a partition's first side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// Exactly these nodes.
    Listed(Vec<usize>),
    /// Each node by a coin drawn from `(salt, node)`, so nodes that join later get a side.
    Drawn(u64),
}

impl Side {
    fn contains(&self, node: usize) -> bool {
        match self {
            Side::Listed(v) => v.contains(&node),
            Side::Drawn(salt) => SimRng::new(salt ^ (node as u64).wrapping_mul(0x9e37)).chance(0.5),
        }
    }
}

impl ActivePartition {
    /// From a scheduled partition.
    pub fn scheduled(p: &Partition) -> Self {
        Self {
            start: p.start_ms * MS,
            end: p.end_ms * MS,
            side: Side::Listed(p.side.clone()),
            one_way: p.one_way,
        }
    }

    /// Whether traffic `from → to` is blocked at `t`.
    pub fn blocks(&self, t: u64, from: usize, to: usize) -> bool {
        if t < self.start || t >= self.end {
            return false;
        }
        let (a, b) = (self.side.contains(from), self.side.contains(to));
        if self.one_way {
            a && !b
        } else {
            a != b
        }
    }
}

/// The link model between two nodes.
pub fn link_of(network: &Network, from: usize, to: usize) -> &Link {
    network
        .links
        .iter()
        .rev()
        .find(|o| o.from.is_none_or(|f| f == from) && o.to.is_none_or(|t| t == to))
        .map_or(&network.link, |o| &o.link)
}

/// The largest one-way delay a delivery can have on any link, ns (latency plus the worst
/// jitter plus the reorder hold), used to derive liveness bounds.
pub fn max_delay(network: &Network) -> u64 {
    std::iter::once(&network.link)
        .chain(network.links.iter().map(|o| &o.link))
        .map(|l| {
            let jitter = match l.jitter {
                Jitter::Uniform => l.jitter_ms,
                Jitter::Exponential => 10 * l.jitter_ms,
            };
            (l.latency_ms + jitter + l.reorder_ms) * MS
        })
        .max()
        .unwrap_or(0)
}

/// The smallest one-way latency of any link, ns: nothing sent at `t` arrives before
/// `t + min_latency`, which lets the simulator process members independently within such a
/// window.
pub fn min_latency(network: &Network) -> u64 {
    std::iter::once(&network.link)
        .chain(network.links.iter().map(|o| &o.link))
        .map(|l| l.latency_ms * MS)
        .min()
        .unwrap_or(MS)
}

/// Draws the fate of one delivery sent at `t` over `link`. `lossy` is false once the network
/// has healed (liveness mode). `repair_ns`: with repair, a lost delivery arrives this much
/// after its direct arrival time instead of never.
pub fn draw(rng: &mut SimRng, link: &Link, t: u64, lossy: bool, repair_ns: Option<u64>) -> Fate {
    let jitter = match link.jitter {
        Jitter::Uniform => rng.range(0, link.jitter_ms * 1000),
        Jitter::Exponential => rng.exponential(link.jitter_ms * 1000),
    } * 1000;
    let mut arrival = t + link.latency_ms * MS + jitter;
    let reordered = rng.chance(link.reorder);
    if reordered {
        arrival += link.reorder_ms * MS;
    }
    let lost = lossy && rng.chance(link.loss);
    let duplicated = rng.chance(link.duplicate);
    let mut arrivals = Vec::with_capacity(2);
    match (lost, repair_ns) {
        (false, _) => arrivals.push(arrival),
        (true, Some(r)) => arrivals.push(arrival + r),
        (true, None) => {}
    }
    if duplicated {
        let copy = arrival + rng.range(0, link.reorder_ms * 1000) * 1000;
        arrivals.push(copy);
    }
    Fate {
        arrivals,
        lost,
        duplicated,
        reordered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_block_the_right_directions_only_while_active() {
        let p = ActivePartition {
            start: 10,
            end: 20,
            side: Side::Listed(vec![1]),
            one_way: false,
        };
        assert!(p.blocks(10, 1, 2) && p.blocks(15, 2, 1));
        assert!(!p.blocks(15, 2, 3) && !p.blocks(9, 1, 2) && !p.blocks(20, 1, 2));
        let one_way = ActivePartition { one_way: true, ..p };
        assert!(one_way.blocks(15, 1, 2));
        assert!(!one_way.blocks(15, 2, 1));
    }

    #[test]
    fn arrivals_respect_the_latency_floor_and_loss_without_repair_drops() {
        let mut r = SimRng::new(3);
        let link = Link {
            latency_ms: 10,
            jitter_ms: 5,
            jitter: Jitter::Exponential,
            loss: 0.5,
            duplicate: 0.5,
            reorder: 0.5,
            reorder_ms: 100,
        };
        let (mut lost, mut kept) = (0, 0);
        for _ in 0..2000 {
            let f = draw(&mut r, &link, 1000, true, None);
            for a in &f.arrivals {
                assert!(*a >= 1000 + 10 * MS);
                assert!(*a <= 1000 + 10 * MS + 50 * MS + 200 * MS);
            }
            if f.lost && !f.duplicated {
                assert!(f.arrivals.is_empty());
                lost += 1;
            } else {
                kept += 1;
            }
            let healed = draw(&mut r, &link, 0, false, None);
            assert!(!healed.lost && !healed.arrivals.is_empty());
        }
        assert!(lost > 200 && kept > 200, "{lost} {kept}");
    }

    #[test]
    fn overrides_pick_the_last_match() {
        let mut n = Network::default();
        let slow = Link {
            latency_ms: 500,
            ..Link::default()
        };
        n.links.push(crate::scenario::LinkOverride {
            from: Some(1),
            to: None,
            link: slow.clone(),
        });
        assert_eq!(link_of(&n, 1, 5), &slow);
        assert_eq!(link_of(&n, 5, 1), &n.link);
        assert_eq!(min_latency(&n), Link::default().latency_ms * MS);
    }
}
