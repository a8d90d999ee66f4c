//! What rendering produces: files for the driver to write, and the `(id, version)` entries
//! that go with them.

/// A file for the driver to write.
#[derive(Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub mode: u32,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("contents", &format_args!("<{} bytes>", self.contents.len()))
            .finish()
    }
}

/// `(id, version)` of one written file or absent optional object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub id: String,
    pub version: String,
}

/// The files one object produces, one [`ObjectVersion`] per file, and anything worth a log line.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<OutputFile>,
    pub versions: Vec<ObjectVersion>,
    /// Human-readable notes (for example an incomplete certificate chain); never secret material.
    pub warnings: Vec<String>,
}
