//! pocketvec-ivf: the SQLite-free algorithms of pocketvec's ANN index.
//!
//! * [`kmeans`] — seeded Lloyd k-means (L2 or spherical), blocked on the
//!   `kernels` distance kernels, multi-threaded assignment.
//! * [`IvfModel`] — the trained artefact: coarse centroids (lists) and the
//!   list quantizer (`none`, `int8`, `pq`); training, assignment, encoding,
//!   probing, and a versioned, checksummed byte format.
//! * [`ListChunk`] / [`ListChunkRef`] — list contents (ids + codes + side
//!   values) as byte chunks for BLOB storage, with append and remove.
//! * [`Searcher`] — probe → ADC / int8 / exact scan → top candidates →
//!   exact re-rank through a caller callback → top-k.
//! * [`MemIndex`] — an in-memory index over chunk bytes (tests, benches, and
//!   the reference for the SQLite layer).
//!
//! Design notes and the byte layouts: `ARCHITECTURE.md (ivf section)`.
#![deny(unstable_features)]

mod codec;
mod error;
pub mod kmeans;
mod list;
mod mem;
mod model;
mod pq;
mod rng;
mod search;
mod simd;

pub use error::Error;
pub use kernels::Metric;
pub use list::{
    CodeLayout, ListChunk, ListChunkRef, CHUNK_HEADER, CHUNK_MAGIC, CHUNK_VERSION,
    DEFAULT_CHUNK_ROWS, MAX_CHUNK_ROWS,
};
pub use mem::MemIndex;
pub use model::{
    default_threads, Encoded, EncodedBatch, IvfModel, IvfParams, QuantizerKind, MAX_DEFAULT_LISTS,
    MAX_DIM, MAX_LISTS, MODEL_MAGIC, MODEL_VERSION,
};
pub use pq::{BLOCK as PQ_BLOCK, KSUB as PQ_KSUB};
pub use rng::sample_indices;
pub use search::{default_rerank, SearchParams, SearchScratch, Searcher};
