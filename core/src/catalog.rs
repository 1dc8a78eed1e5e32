//! Reference data the hospital publishes with its schedules: hospitals,
//! departments, doctors, devices and exam projects (project-info, device-info).

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub project_id: String,
    pub project_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<String>,
    /// Everything else the hospital sent (methods, body parts, pinyin, …), kept as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    pub device_id: String,
    #[serde(default)]
    pub device_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default = "available")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital_id: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn available() -> String {
    "available".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hospital {
    pub hospital_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Default)]
pub struct CatalogData {
    pub hospitals: BTreeMap<String, Hospital>,
    pub projects: BTreeMap<String, Project>,
    pub devices: BTreeMap<String, Device>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub data: RwLock<CatalogData>,
}

impl Catalog {
    pub fn is_hospital(&self, id: &str) -> bool {
        self.data.read().hospitals.contains_key(id)
    }
    pub fn device_project(&self, device_id: &str) -> Option<String> {
        self.data.read().devices.get(device_id).and_then(|d| d.project_id.clone())
    }
}
