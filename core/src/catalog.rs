//! Reference data the hospital publishes with its schedules: hospitals,
//! departments, doctors (with title, speciality and profile), devices and
//! exam projects (project-info, device-info).

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
    /// The price as the hospital sent it: `500` stays `500`, `"500.00"` stays text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Value>,
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
    /// 设备操作人员: who operates the device, as the hospital sent them — a
    /// list of names or of objects (`{"operator_id", "name", "title"}`…), or
    /// one text of names separated by `、` `,` `;`.
    #[serde(default, alias = "operator", skip_serializing_if = "Vec::is_empty", deserialize_with = "operators")]
    pub operators: Vec<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Reads `operators` in the forms hospitals send (see `Device::operators`).
fn operators<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    use serde::de::Error as _;
    let bad = || D::Error::custom("operators must be names or objects");
    let names = |s: &str| -> Vec<Value> {
        s.split(['、', ',', '，', ';', '；']).map(str::trim).filter(|n| !n.is_empty()).map(|n| Value::String(n.to_string())).collect()
    };
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(names(&s)),
        o @ Value::Object(_) => Ok(vec![o]),
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(Value::String(s.trim().to_string())),
                o @ Value::Object(_) => Ok(o),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

fn available() -> String {
    "available".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hospital {
    pub hospital_id: String,
    #[serde(default)]
    pub name: String,
    /// The departments and wards the hospital publishes (`sync-catalog`'s
    /// optional `departments`): names for the drill-downs and quick menus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<Department>,
    /// Its doctors and experts (`sync-catalog`'s optional `doctors`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doctors: Vec<Doctor>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A department or ward (科室/病区) of a hospital.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Department {
    pub department_id: String,
    #[serde(default)]
    pub name: String,
    /// Everything else the hospital sent (location, phone of the desk, …), kept as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A doctor or expert (专家) of a hospital: what the registration and bed
/// menus show on the expert's card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Doctor {
    pub doctor_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    /// 职称: 主任医师, 副主任医师, 主治医师, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// 擅长领域.
    #[serde(default, alias = "specialty", alias = "expertise", skip_serializing_if = "Option::is_none")]
    pub speciality: Option<String>,
    /// 专家简介.
    #[serde(default, alias = "introduction", skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Hospital {
    pub fn new(id: &str) -> Hospital {
        Hospital { hospital_id: id.to_string(), name: String::new(), departments: Vec::new(), doctors: Vec::new(), extra: BTreeMap::new() }
    }
    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.department_id == id)
    }
    pub fn doctor(&self, id: &str) -> Option<&Doctor> {
        self.doctors.iter().find(|d| d.doctor_id == id)
    }
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
