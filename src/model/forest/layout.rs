//! The scoring layout's sizes and slots, shared by the scorer and the
//! walks.

/// Rows scored together: a block of this many rows walks one tree after the
/// other, so the tree's slots and the block's values stay in cache.
pub(super) const BLOCK: usize = 128;
/// Rows of a block walked side by side, so their independent loads overlap.
pub(super) const LANES: usize = 32;
/// Deepest trees scored through the scorer's heap (4,095 slots a tree); deeper trees
/// (`max_samples` above 4,096) are scored node by node.
pub(super) const HEAP_MAX_DEPTH: usize = 12;

/// One slot of a the scorer's heap: 32 bytes.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Slot {
    /// Split value (a row goes right when its value is above it).
    pub(super) value: f64,
    /// The training range of the split feature at the node.
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// The split feature's column in a block: `feature * BLOCK`.
    pub(super) column: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

/// Levels of a tree whose slots a walk can pick from [`Top`] tables
/// (registers) instead of gathering them: 0 to 3 (slots 0 to 14) in one
/// table, 4 (slots 15 to 30) in the other.
pub(super) const TOP_LEVELS: usize = 5;

/// Up to 16 slots of one tree field by field, slot `s` at entry `s % 16`,
/// so a vector of slot numbers picks its lanes' fields with one permute
/// each (a permute reads only an index's lowest four bits).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Top {
    pub(super) value: [f64; 16],
    pub(super) lo: [f64; 16],
    pub(super) hi: [f64; 16],
    pub(super) column: [u64; 16],
}

pub(super) const PASS_TOP: Top = Top {
    value: [PASS.value; 16],
    lo: [PASS.lo; 16],
    hi: [PASS.hi; 16],
    column: [PASS.column; 16],
};

/// A slot that never cuts and always leads left.
pub(super) const PASS: Slot = Slot {
    value: f64::INFINITY,
    lo: f64::NEG_INFINITY,
    hi: f64::INFINITY,
    column: 0,
};
