//! Mapping and catalogue imports as hospitals send them (issue 15, item 2):
//! rejected rows carry the spreadsheet's own row numbers (blank lines and
//! all), Chinese column headers stand beside the English ones, and the
//! Chinese message names every rejected row with a Chinese reason.

mod lab_common;

use base64::Engine as _;
use lab_common::*;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode};

fn catalogue() -> Engine {
    let e = Engine::open(CFG).unwrap();
    ok(&e, "lab-std-item-import", json!({"content": data("lab-standard-items.csv")}));
    ok(&e, "lab-resource-import", json!({"content": data("lab-panels.csv")}));
    e
}

/// The rows `validate_only` rejects, as (row, code).
fn rejected_rows(e: &Engine, inst: &str, csv: &str) -> Vec<(u64, String)> {
    let v = ok(e, "lab-mapping-import", json!({"institution_id": inst, "content": csv, "validate_only": true}));
    v["rejected"].as_array().unwrap().iter().map(|r| (r["row"].as_u64().unwrap(), r["code"].as_str().unwrap().to_string())).collect()
}

/// No English left in a Chinese message once the data it quotes (codes,
/// values) and the usual technical names are taken out.
fn assert_wholly_chinese(zh: &str, data: &[&str]) {
    let mut tokens: Vec<&str> = data.iter().copied().chain(["CSV", "xlsx", "UTF-8", "GBK", "base64"]).collect();
    tokens.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let mut rest = zh.to_string();
    for t in tokens {
        rest = rest.replace(t, "");
    }
    assert!(!rest.chars().any(|c| c.is_ascii_alphabetic()), "English in message_zh: {zh}\n(without the data: {rest})");
    assert!(rest.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "no Chinese in {zh}");
}

#[test]
fn a_blank_line_above_a_bad_row_does_not_shift_its_row_number() {
    let e = catalogue();
    // Row 1 the header, row 2 good, row 3 blank, row 4 only separators, row 5 bad.
    let csv = "inst_code,inst_name,specimen_type,maps_to\nA1,白细胞,全血,STD-HEM-001\n\n,,,\nA2,,全血,STD-HEM-002\n";
    assert_eq!(rejected_rows(&e, "C001", csv), vec![(5, "A2".to_string())]);
    let x = err(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv}));
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    assert!(x.message().contains("row 5: "), "{}", x.message());
    assert!(x.message_zh().contains("第 5 行"), "{}", x.message_zh());
    // The same with Windows line ends.
    assert_eq!(rejected_rows(&e, "C001", &csv.replace('\n', "\r\n")), vec![(5, "A2".to_string())]);
}

#[test]
fn rows_are_numbered_as_a_spreadsheet_shows_them_around_blank_lines_before_the_header_and_multi_line_cells() {
    let e = catalogue();
    // A blank first line: the header is row 2 and A1 row 3.
    let csv = "\ninst_code,inst_name,specimen_type,maps_to\nA1,,全血,STD-HEM-001\n";
    assert_eq!(rejected_rows(&e, "C001", csv), vec![(3, "A1".to_string())]);
    // A quoted cell over two lines is one spreadsheet row: A2 is row 3, then a blank row 4, A3 row 5.
    let csv = "inst_code,inst_name,specimen_type,maps_to\nA1,\"白细胞\n（计数）\",全血,STD-HEM-001\nA2,,全血,\n\nA3,红细胞,全血,STD-NOPE\n";
    assert_eq!(rejected_rows(&e, "C001", csv), vec![(3, "A2".to_string()), (5, "A3".to_string())]);
}

#[test]
fn a_catalogue_import_reports_the_spreadsheet_rows_too() {
    let e = Engine::open(CFG).unwrap();
    let csv = "std_code,name_zh,specimen_type,ref_low\nS1,白细胞计数,全血,3.5\n\n\nS2,红细胞计数,全血,低\n";
    let x = err(&e, "lab-std-item-import", json!({"content": csv}));
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    assert!(x.message().contains("row 5: "), "{}", x.message());
    assert!(x.message_zh().contains("第 5 行"), "{}", x.message_zh());
    ok(&e, "lab-std-item-import", json!({"content": "std_code,name_zh,specimen_type\nS1,白细胞计数,全血\n"}));
    let csv = "code,name,items\nP1,血常规,S1\n\nP2,尿常规,S9\n";
    let x = err(&e, "lab-resource-import", json!({"content": csv}));
    assert!(x.message().contains("row 4: "), "{}", x.message());
}

#[test]
fn a_mapping_file_with_chinese_headers_imports_like_the_english_one() {
    let e = catalogue();
    let csv = "机构项目编码,机构项目名称,样本类型,样本说明,标准项目编码,标准项目名称\n\
               A1,白细胞,全血,空腹,STD-HEM-001,白细胞计数\n\
               A2,同型半胱氨酸,血清,,,\n";
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv}));
    assert_eq!((v["imported"].as_u64(), v["mapped"].as_u64()), (Some(2), Some(1)));
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "code": "A1"}));
    assert_eq!(q["items"][0]["std_code"], "STD-HEM-001");
    assert_eq!(q["items"][0]["specimen_note"], "空腹");
    // The variants hospitals' own exports use: 小项, 代码, 标本, required-field stars,
    // full-width brackets and spaces.
    let csv = "机构小项代码*, 机构小项名称 ,标本类型,标准小项编码（对照）\nB1,血红蛋白,全血,STD-HEM-003\n";
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C002", "content": csv}));
    assert_eq!(v["mapped"], 1);
    // An error names the Chinese column the row lacks.
    let x = err(&e, "lab-mapping-import", json!({"institution_id": "C003", "content": "机构项目编码,样本类型\nB1,全血\n"}));
    assert!(x.message_zh().contains("缺少机构小项名称"), "{}", x.message_zh());
}

#[test]
fn a_project_mapping_file_accepts_the_common_header_variants() {
    let e = catalogue();
    for (n, header) in
        ["项目代码,项目名称,标准编码", "项目编码,项目名称,标准项目编码", "机构项目代码,机构项目名称,标准项目代码", "编码,名称,对照编码"].iter().enumerate()
    {
        let inst = format!("C10{n}");
        let csv = format!("{header}\nX1,血常规,STD-P-CBC\nX2,肝功能,STD-P-LFT\n");
        let v = ok(&e, "lab-mapping-import", json!({"institution_id": inst, "kind": "projects", "content": csv}));
        assert_eq!(v["mapped"], 2, "{header}");
        let q = ok(&e, "lab-inst-project-query", json!({"institution_id": inst, "code": "X2"}));
        assert_eq!(q["projects"][0]["std_code"], "STD-P-LFT", "{header}");
    }
}

#[test]
fn a_standard_catalogue_with_chinese_headers_keeps_unit_reference_and_critical_limits() {
    let e = Engine::open(CFG).unwrap();
    let csv = "项目编码,项目名称,英文缩写,样本类型,专业组,单位,参考范围,危急值下限,危急值上限,法定传染病\n\
               S1,白细胞计数,WBC,全血,临检,10^9/L,3.5～9.5,2.0,30.0,\n\
               S2,总胆固醇,TC,血清,生化,mmol/L,<5.2,,,\n\
               S3,乙肝表面抗原,HBsAg,血清,免疫,,阴性,,,乙型病毒性肝炎\n\
               S4,红细胞计数,RBC,全血,临检,10^12/L,男4.3-5.8 女3.8-5.1,,,\n\
               S5,碱剩余,BE,全血,生化,mmol/L,-3 - 3,,,\n";
    assert_eq!(ok(&e, "lab-std-item-import", json!({"content": csv}))["saved"], 5);
    let items = ok(&e, "lab-std-item-query", json!({}))["items"].as_array().unwrap().clone();
    let get = |c: &str| items.iter().find(|i| i["code"] == c).unwrap().clone();
    let s1 = get("S1");
    assert_eq!(
        (s1["name"].as_str(), s1["abbr"].as_str(), s1["workgroup"].as_str(), s1["unit"].as_str()),
        (Some("白细胞计数"), Some("WBC"), Some("临检"), Some("10^9/L"))
    );
    assert_eq!((s1["ref_low"].as_f64(), s1["ref_high"].as_f64()), (Some(3.5), Some(9.5)));
    assert_eq!((s1["critical_low"].as_f64(), s1["critical_high"].as_f64()), (Some(2.0), Some(30.0)));
    assert_eq!((get("S2")["ref_low"].clone(), get("S2")["ref_high"].as_f64()), (Value::Null, Some(5.2)));
    assert_eq!(get("S3")["ref_text"], "阴性");
    assert_eq!(get("S3")["notifiable_infection"], "乙型病毒性肝炎");
    assert_eq!((get("S4")["ref_text"].as_str(), get("S4")["ref_low"].clone()), (Some("男4.3-5.8 女3.8-5.1"), Value::Null));
    assert_eq!((get("S5")["ref_low"].as_f64(), get("S5")["ref_high"].as_f64()), (Some(-3.0), Some(3.0)));
    // Separate bounds, as some catalogues have them.
    let csv = "小项编码,小项名称,标本类型,参考值下限,参考值上限\nS6,血小板计数,全血,125,350\n";
    ok(&e, "lab-std-item-import", json!({"content": csv}));
    let s6 = ok(&e, "lab-std-item-query", json!({"code": "S6"}))["items"][0].clone();
    assert_eq!((s6["ref_low"].as_f64(), s6["ref_high"].as_f64()), (Some(125.0), Some(350.0)));
    // Projects: 拼音码, 价格（元）, 包含小项.
    let csv = "项目编码,项目名称,拼音码,价格（元）,包含小项\nP1,血常规,xcg,20,S1;S4;S6\n";
    ok(&e, "lab-resource-import", json!({"content": csv}));
    let p = ok(&e, "lab-resource-query", json!({"code": "P1"}))["resources"][0].clone();
    assert_eq!((p["price"].as_f64(), p["pinyin"].as_str(), p["items"].as_array().map(Vec::len)), (Some(20.0), Some("xcg"), Some(3)));
}

#[test]
fn every_rejected_row_of_a_mapping_import_gives_its_reason_in_chinese() {
    let e = catalogue();
    ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": "inst_code,inst_name,specimen_type,maps_to\nHELD,血小板,全血,STD-HEM-005\n"}));
    let long_name = "名".repeat(129);
    let long_code = "C".repeat(65);
    let csv = format!(
        "inst_code,inst_name,specimen_type,maps_to\n\
         A1,白细胞,全血,STD-HEM-001\n\
         A2,红细胞,全血,STD-HEM-001\n\
         A3,,全血,\n\
         A4,未知,全血,STD-NOPE\n\
         A1,重复,全血,\n\
         A5,血糖,全血,STD-CHE-020\n\
         ,无编码,全血,\n\
         A6,{long_name},全血,\n\
         A7,缺样本,,\n\
         {long_code},太长,全血,\n\
         A8,血小板2,全血,STD-HEM-005\n\
         A/9,斜杠,全血,\n"
    );
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv, "validate_only": true}));
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 11, "{v}");
    for r in rejected {
        let zh = r["reason_zh"].as_str().unwrap_or_else(|| panic!("no reason_zh in {r}"));
        assert_wholly_chinese(zh, &["STD-HEM-001", "STD-CHE-020", "STD-HEM-005", "STD-NOPE", "HELD", "A/9"]);
        // English, but for the standard sub-item's specimen type it quotes.
        assert!(r["reason"].as_str().is_some_and(|en| en.replace("全血", "").replace("血清", "").is_ascii()), "{r}");
    }
    let x = err(&e, "lab-mapping-import", json!({"institution_id": "C001", "content": csv}));
    let codes = ["STD-HEM-001", "STD-CHE-020", "STD-HEM-005", "STD-NOPE", "HELD", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A/9", &long_code];
    assert_wholly_chinese(x.message_zh(), &codes);
    for n in [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] {
        assert!(x.message_zh().contains(&format!("第 {n} 行")), "row {n}: {}", x.message_zh());
    }
    // The same reasons for entries sent as JSON.
    let x = err(
        &e,
        "lab-inst-item-upsert",
        json!({"institution_id": "C001", "items": [{"code": "B1", "name": "白细胞"}, {"code": "B2", "specimen_type": "全血"}]}),
    );
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    assert_wholly_chinese(x.message_zh(), &["B1", "B2"]);
    assert!(x.message_zh().contains("第 1 行") && x.message_zh().contains("第 2 行"), "{}", x.message_zh());
}

#[test]
fn every_rejected_row_of_a_catalogue_import_gives_its_reason_in_chinese() {
    let e = catalogue();
    let csv = "std_code,name_zh,specimen_type,ref_low,ref_high,critical_low\n\
               N1,甲,全血,x,,\n\
               N2,乙,全血,9,3,\n\
               N3,,全血,,,\n\
               N4,丁,,,,\n\
               N6,戊,全血,,,\n\
               N6,戊二,全血,,,\n\
               ,己,全血,,,\n\
               N5,庚,全血,,,inf\n";
    let x = err(&e, "lab-std-item-import", json!({"content": csv}));
    assert_eq!(x.code(), ErrorCode::LabImportRejected);
    // The values quoted back (x, inf) are the file's own.
    assert_wholly_chinese(x.message_zh(), &["N1", "N2", "N3", "N4", "N5", "N6", "inf", "x"]);
    assert!(x.message_zh().contains("参考下限"), "{}", x.message_zh());
    let csv = "code,name,items,price\nQ1,甲,STD-HEM-001,贵\nQ2,乙,STD-NOPE,\nQ3,丙,,\nQ6,丁,STD-HEM-001,\nQ6,丁二,STD-HEM-001,\nQ4,,STD-HEM-001,\nQ5,戊,;;,\n";
    let x = err(&e, "lab-resource-import", json!({"content": csv}));
    assert_wholly_chinese(x.message_zh(), &["Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "STD-HEM-001", "STD-NOPE"]);
    let x = err(
        &e,
        "lab-tube-rules-set",
        json!({"rules": [
            {"specimen_type": "全血", "workgroup": "临检", "container_code": "EDTA", "container_name": "紫头管", "volume_ml": "两毫升"},
            {"specimen_type": "全血"},
            {"specimen_type": "血清", "workgroup": "生化", "container_code": "SST", "container_name": "黄头管"},
            {"specimen_type": "血清", "workgroup": "生化", "container_code": "SST", "container_name": "黄头管"},
            {"workgroup": "生化", "container_code": "SST", "container_name": "黄头管"}
        ]}),
    );
    assert_wholly_chinese(x.message_zh(), &[]);
    // Deleting what is still in use says why in Chinese.
    let x = err(&e, "lab-std-item-delete", json!({"code": "STD-HEM-001"}));
    assert_eq!(x.code(), ErrorCode::LabInUse);
    assert_wholly_chinese(x.message_zh(), &["STD-HEM-001", "STD-P-CBC"]);
}

#[test]
fn a_csv_saved_by_excel_on_a_chinese_windows_in_gbk_imports() {
    let e = catalogue();
    // 机构项目编码,机构项目名称,样本类型,标准项目编码 / A1,白细胞,全血,STD-HEM-001 in GBK.
    let gbk: Vec<u8> = ["机构项目编码", ",", "机构项目名称", ",", "样本类型", ",", "标准项目编码", "\r\nA1,", "白细胞", ",", "全血", ",STD-HEM-001\r\n"]
        .iter()
        .flat_map(|s| gbk_bytes(s))
        .collect();
    assert!(std::str::from_utf8(&gbk).is_err());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&gbk);
    let v = ok(&e, "lab-mapping-import", json!({"institution_id": "C001", "format": "csv", "content_base64": b64}));
    assert_eq!(v["mapped"], 1);
    let q = ok(&e, "lab-inst-item-query", json!({"institution_id": "C001", "code": "A1"}));
    assert_eq!((q["items"][0]["name"].as_str(), q["items"][0]["specimen_type"].as_str()), (Some("白细胞"), Some("全血")));
}

/// GBK bytes of the few characters the test above uses (ASCII as is).
fn gbk_bytes(s: &str) -> Vec<u8> {
    let table: &[(char, [u8; 2])] = &[
        ('机', [0xBB, 0xFA]),
        ('构', [0xB9, 0xB9]),
        ('项', [0xCF, 0xEE]),
        ('目', [0xC4, 0xBF]),
        ('编', [0xB1, 0xE0]),
        ('码', [0xC2, 0xEB]),
        ('名', [0xC3, 0xFB]),
        ('称', [0xB3, 0xC6]),
        ('样', [0xD1, 0xF9]),
        ('本', [0xB1, 0xBE]),
        ('类', [0xC0, 0xE0]),
        ('型', [0xD0, 0xCD]),
        ('标', [0xB1, 0xEA]),
        ('准', [0xD7, 0xBC]),
        ('白', [0xB0, 0xD7]),
        ('细', [0xCF, 0xB8]),
        ('胞', [0xB0, 0xFB]),
        ('全', [0xC8, 0xAB]),
        ('血', [0xD1, 0xAA]),
    ];
    s.chars()
        .flat_map(|c| match table.iter().find(|(k, _)| *k == c) {
            Some((_, b)) => b.to_vec(),
            None => vec![c as u8],
        })
        .collect()
}

#[test]
fn an_unreadable_file_is_explained_in_chinese() {
    let e = catalogue();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // Bytes that are neither UTF-8 nor GBK.
    let binary = [b"inst_code,inst_name,specimen_type\nA1,".as_slice(), &[0xFF, 0xFE, 0x80], b",x\n"].concat();
    let cases = [
        json!({"institution_id": "C001", "format": "csv", "content_base64": b64(&binary)}),
        json!({"institution_id": "C001", "format": "xlsx", "content_base64": "AAAA"}),
        json!({"institution_id": "C001", "content_base64": "不是base64"}),
        json!({"institution_id": "C001", "content": "inst_code,inst_name\n\n"}),
        json!({"institution_id": "C001", "content": "a,b\n1,2\n", "format": "ods"}),
        json!({"institution_id": "C001", "content": "a,b\n1,2\n", "kind": "panels"}),
        json!({"institution_id": "C001", "content": 5}),
        json!({"institution_id": "C001", "path": "x.csv"}),
    ];
    for req in cases {
        let x = err(&e, "lab-mapping-import", req.clone());
        // Field names and the values they take are the interface's own words.
        let words = ["content_base64", "content", "format", "kind", "path", "data_dir", "lab-files", "csv", "items", "projects"];
        assert_wholly_chinese(x.message_zh(), &words);
        assert!(!x.message().is_empty(), "{req}");
    }
}
