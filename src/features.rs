//! The feature table: named columns computed from host profiles.
//!
//! Every feature is a [`FeatureDef`]: a name (the CSV column), a one-line
//! description (used in the README and charts) and a function of a
//! [`HostProfile`]. The forest only sees the resulting matrix, so new
//! features are added here alone.

use std::net::IpAddr;

use ndarray::Array2;

use crate::profile::HostProfile;

/// One named feature.
#[derive(Clone, Copy)]
pub struct FeatureDef {
    pub name: &'static str,
    pub description: &'static str,
    pub compute: fn(&HostProfile) -> f64,
}

impl std::fmt::Debug for FeatureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The seed's four features.
pub const SEED_FEATURES: &[FeatureDef] = &[
    FeatureDef {
        name: "unique_dst_ips",
        description: "distinct destination IPs contacted",
        compute: |h| h.dst_ips.len() as f64,
    },
    FeatureDef {
        name: "unique_dst_ports",
        description: "distinct destination ports contacted",
        compute: |h| h.dst_ports.len() as f64,
    },
    FeatureDef {
        name: "flow_count",
        description: "flows initiated",
        compute: |h| h.flows as f64,
    },
    FeatureDef {
        name: "mean_duration_us",
        description: "mean flow duration (microseconds)",
        compute: |h| h.mean_duration_us(),
    },
];

/// Hosts x features.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    pub defs: Vec<FeatureDef>,
    pub hosts: Vec<IpAddr>,
    /// One row per host, one column per feature; always finite.
    pub values: Array2<f64>,
}

impl FeatureTable {
    /// Computes `defs` for every profile (rows in the profiles' order).
    /// Non-finite results are replaced by 0 so they never reach the model.
    pub fn build(profiles: &[HostProfile], defs: &[FeatureDef]) -> FeatureTable {
        let mut values = Array2::zeros((profiles.len(), defs.len()));
        for (i, p) in profiles.iter().enumerate() {
            for (j, d) in defs.iter().enumerate() {
                let v = (d.compute)(p);
                values[[i, j]] = if v.is_finite() { v } else { 0.0 };
            }
        }
        FeatureTable {
            defs: defs.to_vec(),
            hosts: profiles.iter().map(|p| p.ip).collect(),
            values,
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.defs.iter().map(|d| d.name).collect()
    }
}
