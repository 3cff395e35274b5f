//! Docker image references (`[registry/]repository[:tag][@digest]`) and Rancher release versions.

use std::cmp::Ordering;
use std::fmt;

/// The repository every Rancher 1.x server image lives in, under any registry.
pub const RANCHER_SERVER_REPOSITORY: &str = "rancher/server";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `127.0.0.1:5000`, `docker.io`, ...; `None` when the reference names none.
    pub registry: Option<String>,
    /// The path inside the registry: `rancher/server`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<ImageRef, String> {
        if reference.is_empty() {
            return Err("an image reference can't be empty".into());
        }
        if reference.starts_with('-') {
            return Err(format!(
                "image reference {reference:?} starts with '-', which docker would read as an option"
            ));
        }
        if let Some(c) = reference
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "image reference {reference:?} contains {c:?}, which no image name may contain"
            ));
        }
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (reference, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(colon) => (
                &name[..last_slash + colon],
                Some(name[last_slash + colon + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), rest.to_string())
            }
            _ => (None, path.to_string()),
        };
        let valid_registry = registry.as_deref().is_none_or(|r| {
            r.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        });
        // Docker's rule: lowercase path components of letters and digits, joined by . _ -
        let valid_repository = repository.split('/').all(|component| {
            !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
        let valid_digest = digest.as_deref().is_none_or(|d| {
            d.split_once(':').is_some_and(|(algorithm, hex)| {
                !algorithm.is_empty()
                    && !hex.is_empty()
                    && algorithm
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
            })
        });
        if !(valid_registry
            && valid_repository
            && valid_digest
            && tag.as_deref().is_none_or(is_valid_tag))
        {
            return Err(format!(
                "{reference:?} is not a valid image reference (like registry:5000/rancher/server:v1.6.30; a tag holds letters, digits, '_', '.', '-')"
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The same repository under the same registry, with another tag.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// `rancher/server` and `library/rancher/server` alike, under any registry.
    pub fn is_rancher_server(&self) -> bool {
        self.repository == RANCHER_SERVER_REPOSITORY
            || self.repository == format!("library/{RANCHER_SERVER_REPOSITORY}")
    }

    /// A missing tag means `latest`, as docker reads it.
    pub fn effective_tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule for a tag: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'.
fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// What `--to` names: a tag of the running image's repository, or a whole image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Image(ImageRef),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        if text.contains(['/', ':', '@']) {
            return ImageRef::parse(text)
                .map(Target::Image)
                .map_err(|why| format!("--to: {why}"));
        }
        if is_valid_tag(text) {
            Ok(Target::Tag(text.to_string()))
        } else {
            Err(format!(
                "--to {text:?} is neither a tag (letters, digits, '_', '.', '-'; like v1.6.30) nor an image reference (like rancher/server:v1.6.30)"
            ))
        }
    }

    /// The image to upgrade to, for a server running `current`.
    pub fn resolve(&self, current: &ImageRef) -> ImageRef {
        match self {
            Target::Tag(tag) => current.with_tag(tag),
            Target::Image(image) => image.clone(),
        }
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A Rancher release number, `v1.6.30` or `1.6.30`, with an optional suffix (`-rc1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<u64>,
    suffix: String,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let numbers = text[..end]
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        if numbers.len() < 2 {
            return None;
        }
        Some(Version {
            numbers,
            suffix: text[end..].to_string(),
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// A pre-release (`v1.6.30-rc1`) comes before its release (`v1.6.30`).
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| {
            match (self.suffix.is_empty(), other.suffix.is_empty()) {
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => self.suffix.cmp(&other.suffix),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_and_registry_references() {
        let hub = ImageRef::parse("rancher/server:v1.6.10").unwrap();
        assert_eq!(hub.registry, None);
        assert_eq!(hub.repository, "rancher/server");
        assert_eq!(hub.tag.as_deref(), Some("v1.6.10"));

        let local = ImageRef::parse("127.0.0.1:5000/rancher/server:v1.6.30").unwrap();
        assert_eq!(local.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(local.repository, "rancher/server");
        assert!(local.is_rancher_server());
        assert_eq!(local.to_string(), "127.0.0.1:5000/rancher/server:v1.6.30");

        let untagged = ImageRef::parse("localhost:5000/rancher/server").unwrap();
        assert_eq!(untagged.effective_tag(), "latest");
    }

    #[test]
    fn a_digest_is_kept_apart_from_the_tag() {
        let pinned = ImageRef::parse("rancher/server:v1.6.30@sha256:abc").unwrap();
        assert_eq!(pinned.tag.as_deref(), Some("v1.6.30"));
        assert_eq!(pinned.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(
            pinned.with_tag("v1.6.31").to_string(),
            "rancher/server:v1.6.31"
        );
    }

    #[test]
    fn rejects_references_docker_would_misread() {
        for bad in [
            "",
            "-v",
            "rancher/server:",
            "rancher/ server",
            "a\nb",
            "registry/",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(!ImageRef::parse("nginx:1.25").unwrap().is_rancher_server());
    }

    #[test]
    fn a_tag_target_keeps_the_running_registry_and_repository() {
        let current = ImageRef::parse("127.0.0.1:5000/rancher/server:v1.6.10").unwrap();
        let target = Target::parse("v1.6.30").unwrap();
        assert_eq!(
            target.resolve(&current).to_string(),
            "127.0.0.1:5000/rancher/server:v1.6.30"
        );
        let full = Target::parse("rancher/server:stable").unwrap();
        assert_eq!(full.resolve(&current).to_string(), "rancher/server:stable");
        for bad in ["", "-rm", ".x", "v1 6", "v1;rm", "v1\n"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn versions_order_numerically_and_releases_after_candidates() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("v1.6.10") > v("v1.6.9"));
        assert!(v("v1.6.30") > v("v1.6.30-rc1"));
        assert!(v("1.10.0") > v("v1.9.99"));
        assert_eq!(Version::parse("stable"), None);
        assert_eq!(Version::parse("latest"), None);
    }
}
