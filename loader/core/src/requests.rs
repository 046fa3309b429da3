//! Finding the kernel's requests in its loaded image.
//!
//! The protocol has the loader look for 8-byte aligned magic numbers in the
//! loaded executable: the base revision tag, the requests, and the optional
//! start and end markers that bound the search (honoured since base revision
//! 2, and by this loader always). This module only finds them; the loader
//! decides what to answer.

use crate::protocol::{
    BASE_REVISION_MAGIC, COMMON_MAGIC, Feature, REQUEST_REVISION_OFFSET, REQUESTS_END_MARKER, REQUESTS_START_MARKER,
};
use alloc::vec::Vec;
use core::fmt;

/// The base revision tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseRevisionTag {
    /// Offset of the tag's first word in the image.
    pub offset: usize,
    /// The revision the kernel asks for (the tag's third word).
    pub requested: u64,
}

/// A request of a feature this loader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundRequest {
    /// Which feature.
    pub feature: Feature,
    /// Offset of the request's first word in the image.
    pub offset: usize,
    /// The request's revision as the kernel wrote it.
    pub revision: u64,
}

/// What a scan of the image found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// The base revision tag, if any (none means revision 0).
    pub base_revision: Option<BaseRevisionTag>,
    /// Known requests, in image order.
    pub requests: Vec<FoundRequest>,
    /// Offsets of requests with the common magic but an unknown identifier.
    pub unknown: Vec<usize>,
    /// The byte range searched: between the markers, or the whole image.
    pub area: (usize, usize),
    /// Whether a start or end marker bounded the search.
    pub delimited: bool,
}

impl Scan {
    /// The request of `feature`, if the kernel made one.
    pub fn get(&self, feature: Feature) -> Option<&FoundRequest> {
        self.requests.iter().find(|r| r.feature == feature)
    }
}

/// Why the requests cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The same request appears twice; the protocol says to refuse the kernel.
    Duplicate {
        /// The feature requested twice.
        feature: Feature,
        /// Offset of the first copy.
        first: usize,
        /// Offset of the second copy.
        second: usize,
    },
    /// A request starts so close to the end of the image that its fields are
    /// not all inside it.
    Truncated {
        /// The feature.
        feature: Feature,
        /// Offset of the request.
        offset: usize,
    },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Duplicate { feature, first, second } => write!(
                f,
                "the {} request appears twice (image offsets {first:#x} and {second:#x}); the protocol allows one",
                feature.name()
            ),
            ScanError::Truncated { feature, offset } => {
                write!(f, "the {} request at image offset {offset:#x} runs past the end of the image", feature.name())
            }
        }
    }
}

fn word(image: &[u8], offset: usize) -> Option<u64> {
    let bytes = image.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn words_match(image: &[u8], offset: usize, expected: &[u64]) -> bool {
    expected.iter().enumerate().all(|(i, &w)| word(image, offset + 8 * i) == Some(w))
}

/// Scans `image` (the loaded executable, starting at its lowest virtual
/// address, which is page aligned) for the base revision tag and requests.
pub fn scan(image: &[u8]) -> Result<Scan, ScanError> {
    let len = image.len() & !7;
    // The search area: after the last start marker seen before the first end
    // marker, up to that end marker.
    let mut start = 0;
    let mut end = len;
    let mut delimited = false;
    let mut offset = 0;
    while offset < len {
        if words_match(image, offset, &REQUESTS_END_MARKER) {
            end = offset;
            delimited = true;
            break;
        }
        if words_match(image, offset, &REQUESTS_START_MARKER) {
            start = offset + 8 * REQUESTS_START_MARKER.len();
            delimited = true;
            offset = start;
            continue;
        }
        offset += 8;
    }

    let mut scan = Scan { area: (start, end), delimited, ..Scan::default() };
    let mut offset = start;
    while offset + 16 <= end {
        if scan.base_revision.is_none() && offset + 24 <= end && words_match(image, offset, &BASE_REVISION_MAGIC) {
            let requested = word(image, offset + 16).unwrap_or(0);
            scan.base_revision = Some(BaseRevisionTag { offset, requested });
            offset += 24;
            continue;
        }
        if words_match(image, offset, &COMMON_MAGIC) {
            let id = [word(image, offset + 16).unwrap_or(0), word(image, offset + 24).unwrap_or(0)];
            match Feature::from_id(id) {
                Some(feature) => {
                    let revision = word(image, offset + REQUEST_REVISION_OFFSET)
                        .ok_or(ScanError::Truncated { feature, offset })?;
                    if offset + feature.request_size(revision) > image.len() {
                        return Err(ScanError::Truncated { feature, offset });
                    }
                    if let Some(first) = scan.get(feature) {
                        return Err(ScanError::Duplicate { feature, first: first.offset, second: offset });
                    }
                    scan.requests.push(FoundRequest { feature, offset, revision });
                    offset += feature.request_size(revision).next_multiple_of(8);
                    continue;
                }
                None => scan.unknown.push(offset),
            }
        }
        offset += 8;
    }
    Ok(scan)
}

/// The base revision the kernel is booted with, or why it cannot be booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseRevisionDecision {
    /// Boot with this revision and set the tag's third word to 0.
    Supported(u64),
    /// The kernel asks for a newer revision: boot with this one and leave the
    /// tag's third word as it is, so the kernel can tell.
    Newer {
        /// What the kernel asked for.
        requested: u64,
        /// What it gets.
        used: u64,
    },
    /// Revision 0 (or no tag at all): not supported by this loader.
    Unsupported(u64),
}

/// Applies the protocol's rules for base revisions to the scanned tag.
pub fn decide_base_revision(tag: Option<BaseRevisionTag>) -> BaseRevisionDecision {
    use crate::protocol::{MAX_BASE_REVISION, MIN_BASE_REVISION};
    let requested = tag.map_or(0, |t| t.requested);
    if requested < MIN_BASE_REVISION {
        BaseRevisionDecision::Unsupported(requested)
    } else if requested > MAX_BASE_REVISION {
        BaseRevisionDecision::Newer { requested, used: MAX_BASE_REVISION }
    } else {
        BaseRevisionDecision::Supported(requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Feature;

    fn image(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn request(feature: Feature, revision: u64) -> Vec<u64> {
        let id = feature.id();
        let mut w = vec![COMMON_MAGIC[0], COMMON_MAGIC[1], id[0], id[1], revision, 0];
        w.resize(feature.request_size(revision) / 8, 0);
        w
    }

    fn tag(revision: u64) -> Vec<u64> {
        vec![BASE_REVISION_MAGIC[0], BASE_REVISION_MAGIC[1], revision]
    }

    #[test]
    fn finds_tag_and_requests_anywhere_without_markers() {
        let mut w = vec![1, 2, 3];
        w.extend(tag(3));
        w.push(0xdead);
        w.extend(request(Feature::Hhdm, 0));
        w.extend(request(Feature::PagingMode, 1));
        w.extend(request(Feature::Module, 1));
        w.push(7);
        let s = scan(&image(&w)).unwrap();
        assert_eq!(s.base_revision, Some(BaseRevisionTag { offset: 24, requested: 3 }));
        let found: Vec<_> = s.requests.iter().map(|r| (r.feature, r.offset, r.revision)).collect();
        assert_eq!(found, vec![(Feature::Hhdm, 56, 0), (Feature::PagingMode, 104, 1), (Feature::Module, 176, 1)]);
        assert!(!s.delimited);
    }

    #[test]
    fn markers_bound_the_search() {
        let mut w = request(Feature::Hhdm, 0); // before the start marker: ignored
        w.extend(REQUESTS_START_MARKER);
        let start = w.len() * 8;
        w.extend(tag(2));
        w.extend(request(Feature::Memmap, 0));
        let end = w.len() * 8;
        w.extend(REQUESTS_END_MARKER);
        w.extend(request(Feature::Rsdp, 0)); // after the end marker: ignored
        let s = scan(&image(&w)).unwrap();
        assert!(s.delimited);
        assert_eq!(s.area, (start, end));
        assert_eq!(s.base_revision.unwrap().requested, 2);
        assert_eq!(s.requests.len(), 1);
        assert_eq!(s.requests[0].feature, Feature::Memmap);
    }

    #[test]
    fn the_last_start_marker_before_the_end_counts() {
        let mut w = REQUESTS_START_MARKER.to_vec();
        w.extend(request(Feature::Hhdm, 0));
        w.extend(REQUESTS_START_MARKER);
        w.extend(request(Feature::Memmap, 0));
        w.extend(REQUESTS_END_MARKER);
        let s = scan(&image(&w)).unwrap();
        assert_eq!(s.requests.iter().map(|r| r.feature).collect::<Vec<_>>(), vec![Feature::Memmap]);
    }

    #[test]
    fn only_an_end_marker() {
        let mut w = request(Feature::Hhdm, 0);
        w.extend(REQUESTS_END_MARKER);
        w.extend(request(Feature::Memmap, 0));
        let s = scan(&image(&w)).unwrap();
        assert_eq!(s.requests.iter().map(|r| r.feature).collect::<Vec<_>>(), vec![Feature::Hhdm]);
        assert!(s.base_revision.is_none());
    }

    #[test]
    fn duplicates_are_refused_and_unknown_ids_kept_aside() {
        let mut w = request(Feature::Hhdm, 0);
        w.extend([COMMON_MAGIC[0], COMMON_MAGIC[1], 0x1234, 0x5678, 0, 0]);
        let s = scan(&image(&w)).unwrap();
        assert_eq!(s.unknown, vec![48]);
        w.extend(request(Feature::Hhdm, 0));
        let err = scan(&image(&w)).unwrap_err();
        assert_eq!(err, ScanError::Duplicate { feature: Feature::Hhdm, first: 0, second: 96 });
        assert!(err.to_string().contains("HHDM request appears twice"));
    }

    #[test]
    fn truncated_requests_are_refused() {
        let mut w = request(Feature::PagingMode, 1);
        w.truncate(7);
        assert_eq!(scan(&image(&w)).unwrap_err(), ScanError::Truncated { feature: Feature::PagingMode, offset: 0 });
    }

    #[test]
    fn newer_request_revisions_are_read_at_the_known_size() {
        let mut w = request(Feature::Memmap, 0);
        w[4] = 9;
        let s = scan(&image(&w)).unwrap();
        assert_eq!(s.requests[0].revision, 9);
    }

    #[test]
    fn base_revision_rules() {
        let t = |r| Some(BaseRevisionTag { offset: 0, requested: r });
        assert_eq!(decide_base_revision(None), BaseRevisionDecision::Unsupported(0));
        assert_eq!(decide_base_revision(t(0)), BaseRevisionDecision::Unsupported(0));
        assert_eq!(decide_base_revision(t(1)), BaseRevisionDecision::Supported(1));
        assert_eq!(decide_base_revision(t(3)), BaseRevisionDecision::Supported(3));
        assert_eq!(decide_base_revision(t(4)), BaseRevisionDecision::Newer { requested: 4, used: 3 });
    }
}
