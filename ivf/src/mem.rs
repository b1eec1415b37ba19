//! An in-memory IVF index over serialised chunks: the reference for how the
//! SQLite layer drives the crate (one BLOB per chunk, a rowid → list map),
//! used by the tests and the benchmark.

use crate::error::Error;
use crate::list::{ListChunk, ListChunkRef};
use crate::model::IvfModel;
use crate::search::SearchParams;
use std::collections::HashMap;

/// Lists held as chunk bytes, exactly as they would be stored in BLOBs.
pub struct MemIndex {
    model: IvfModel,
    chunk_rows: usize,
    lists: Vec<Vec<Vec<u8>>>,
    list_of: HashMap<i64, u32>,
}

impl MemIndex {
    /// Empty index; each chunk holds at most `chunk_rows` entries.
    pub fn new(model: IvfModel, chunk_rows: usize) -> MemIndex {
        let lists = vec![Vec::new(); model.lists()];
        MemIndex {
            model,
            chunk_rows: chunk_rows.max(1),
            lists,
            list_of: HashMap::new(),
        }
    }
    pub fn model(&self) -> &IvfModel {
        &self.model
    }
    pub fn len(&self) -> usize {
        self.list_of.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list_of.is_empty()
    }
    /// Chunk blobs of `list`.
    pub fn chunks(&self, list: u32) -> &[Vec<u8>] {
        &self.lists[list as usize]
    }
    /// Entries per list.
    pub fn list_sizes(&self) -> Vec<usize> {
        let layout = self.model.code_layout();
        self.lists
            .iter()
            .map(|cs| {
                cs.iter()
                    .map(|b| ListChunkRef::parse(b, layout).map_or(0, |c| c.len()))
                    .sum()
            })
            .collect()
    }
    /// Total bytes of all chunk blobs.
    pub fn list_bytes(&self) -> usize {
        self.lists.iter().flatten().map(|b| b.len()).sum()
    }

    /// Insert `ids[i]` → row `i` of `data`. An id already present is
    /// replaced (removed first).
    pub fn add_batch(&mut self, ids: &[i64], data: &[f32], threads: usize) -> Result<(), Error> {
        let dim = self.model.dim();
        if data.len() != ids.len() * dim {
            return Err(Error::LengthMismatch {
                what: "vectors",
                expected: ids.len() * dim,
                found: data.len(),
            });
        }
        let enc = self.model.encode_batch(data, threads)?;
        for &id in ids {
            self.remove(id)?;
        }
        let mut by_list: Vec<Vec<usize>> = vec![Vec::new(); self.model.lists()];
        for i in 0..ids.len() {
            by_list[enc.lists[i] as usize].push(i);
        }
        let layout = self.model.code_layout();
        for (l, rows) in by_list.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let chunks = &mut self.lists[l];
            let mut cur = match chunks.pop() {
                Some(b) => ListChunk::from_bytes(&b, layout)?,
                None => ListChunk::new(layout),
            };
            for i in rows {
                if cur.len() >= self.chunk_rows {
                    chunks.push(cur.to_bytes());
                    cur = ListChunk::new(layout);
                }
                let (list, code, aux) = enc.get(i);
                cur.push(ids[i], code, aux)?;
                self.list_of.insert(ids[i], list);
            }
            chunks.push(cur.to_bytes());
        }
        Ok(())
    }

    /// Remove `id`; returns whether it was present.
    pub fn remove(&mut self, id: i64) -> Result<bool, Error> {
        let Some(list) = self.list_of.remove(&id) else {
            return Ok(false);
        };
        let layout = self.model.code_layout();
        let chunks = &mut self.lists[list as usize];
        for ci in 0..chunks.len() {
            let mut c = ListChunk::from_bytes(&chunks[ci], layout)?;
            if c.remove(id) {
                if c.is_empty() {
                    chunks.remove(ci);
                } else {
                    chunks[ci] = c.to_bytes();
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Search with an exact re-rank through `exact` (see
    /// [`Searcher::finish_rerank`](crate::Searcher::finish_rerank)); with
    /// `params.rerank == 0` returns approximate distances without calling it.
    pub fn search<E: From<Error>>(
        &self,
        query: &[f32],
        params: &SearchParams,
        exact: impl FnMut(&[i64], &mut [Option<f32>]) -> Result<(), E>,
    ) -> Result<Vec<(i64, f32)>, E> {
        let mut s = self.model.searcher(query, params)?;
        s.scan_probed(|l| &self.lists[l as usize][..], &mut |_| true)?;
        if params.rerank == 0 {
            Ok(s.finish())
        } else {
            s.finish_rerank(exact)
        }
    }
}
