//! The path rules of the Secrets Store CSI Driver's file writer (`pkg/util/fileutil`, see
//! research/driver.md §1.6), held against every alias up front and against every rendered file
//! (with its `.crt`/`.key` suffix) before it is returned, so the driver never refuses a response.

/// The driver rejects path elements over 255 bytes and paths over 4096 bytes.
pub const MAX_PATH_ELEMENT: usize = 255;
/// See [`MAX_PATH_ELEMENT`].
pub const MAX_PATH: usize = 4096;

/// A path the driver accepts and that stays inside the mount: relative, clean, no `..`,
/// no backslashes or control characters, elements ≤ 255 bytes, at most 4096 bytes, not `.`,
/// and no first element that starts with `..` (the atomic writer's own names).
pub fn validate_relative_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        return Err("must be a relative path, not an absolute one".into());
    }
    if path.contains('\\') {
        return Err("must not contain a backslash (use / between directories)".into());
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    if path == "." {
        return Err(
            "must not be \".\", the volume's own directory: the Secrets Store CSI Driver cannot \
             write a file there"
                .into(),
        );
    }
    let first = path.split('/').next().unwrap_or_default();
    if first.len() > 2 && first.starts_with("..") {
        return Err(
            "must not start with \"..\": the Secrets Store CSI Driver's atomic writer keeps its \
             own ..data link and ..<timestamp> directories there and refuses such paths"
                .into(),
        );
    }
    for element in path.split('/') {
        match element {
            "" => return Err("must not contain empty path elements (// or a trailing /)".into()),
            "." => return Err("must not contain a . path element".into()),
            ".." => {
                return Err(
                    "must not contain a .. path element (files stay inside the volume)".into(),
                );
            }
            e if e.len() > MAX_PATH_ELEMENT => {
                return Err(format!(
                    "has a path element longer than {MAX_PATH_ELEMENT} bytes"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
