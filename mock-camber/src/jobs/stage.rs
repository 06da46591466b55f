//! The stages of the simulated pipeline: FETCH → OCR → NORMALIZE.

/// A stage of the simulated pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Fetch,
    Ocr,
    Normalize,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Fetch, Stage::Ocr, Stage::Normalize];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetch => "FETCH",
            Self::Ocr => "OCR",
            Self::Normalize => "NORMALIZE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The stage after this one; none after the last.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Fetch => Some(Self::Ocr),
            Self::Ocr => Some(Self::Normalize),
            Self::Normalize => None,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
