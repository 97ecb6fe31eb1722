//! [`ErrorSource`]: another error kept whole inside a [`crate::HalError`], so that a caller
//! can walk the chain ([`std::error::Error::source`]) or downcast it instead of reading text.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error a [`crate::HalError`] wraps (an OS, driver or backend error).
///
/// Shared, so that [`crate::HalError`] stays `Clone`; two sources are equal when they say the
/// same, which is what comparing the text-only errors they replace meant.
#[derive(Debug, Clone)]
pub struct ErrorSource(Arc<dyn Error + Send + Sync + 'static>);

impl ErrorSource {
    /// Wraps an error (or a message, which becomes an error of its own).
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Self(Arc::from(error.into()))
    }

    /// The wrapped error, e.g. to downcast it.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Transparent: shows the wrapped error's text and continues with the wrapped error's source.
impl Error for ErrorSource {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for ErrorSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapped_error_stays_reachable() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let source = ErrorSource::new(io);
        assert_eq!(source.to_string(), "gone");
        let back = source.get_ref().downcast_ref::<std::io::Error>();
        assert_eq!(
            back.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
        assert_eq!(source, ErrorSource::new("gone"));
        assert_ne!(source, ErrorSource::new("here"));
    }
}
