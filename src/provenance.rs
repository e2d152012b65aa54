//! How a file was made, carried by every file inrlab writes (PNG text chunks, a field of every
//! JSON, the header of every CSV), so that `inrlab run --config <that file>` makes it again: the
//! image by name and content hash, the working size and fit, every selected method with every
//! parameter (its seed included), the random generator, the backend and adapter, and inrlab's
//! version. A preset is this record alone in a JSON file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::methods::params::Resolved;
use crate::methods::{self, MethodInfo, ParamValues};
use crate::rng::RngKind;
use crate::target::{Fit, SAMPLE_NAME, SAMPLE_PNG, Target, load_image};

/// The PNG text chunk (iTXt, UTF-8) that holds the record as JSON.
pub const PNG_KEYWORD: &str = "inrlab";
/// What wrote the file, as PNG's registered "Software" keyword and in every record.
pub fn made_by() -> String {
    format!("inrlab {}", env!("CARGO_PKG_VERSION"))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of the file at `path`, read in pieces: a photograph of hundreds of
/// megabytes is never held whole just to be hashed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The image a run fitted: the built-in sample, or a file by path, each with the SHA-256 of
/// its encoded bytes (so a file moved or edited since is told apart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOrigin {
    pub name: String,
    /// `None` for the built-in sample and for images dropped as bytes without a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub sha256: String,
}

impl ImageOrigin {
    pub fn sample() -> Self {
        ImageOrigin {
            name: SAMPLE_NAME.to_owned(),
            path: None,
            sha256: sha256_hex(SAMPLE_PNG),
        }
    }

    /// The file at `path`, hashed as it is now.
    pub fn file(path: &Path) -> anyhow::Result<Self> {
        let sha256 =
            sha256_file(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(ImageOrigin {
            name: path.display().to_string(),
            path: Some(path.to_path_buf()),
            sha256,
        })
    }

    pub fn bytes(name: &str, path: Option<&Path>, bytes: &[u8]) -> Self {
        ImageOrigin {
            name: name.to_owned(),
            path: path.map(Path::to_path_buf),
            sha256: sha256_hex(bytes),
        }
    }

    pub fn is_sample(&self) -> bool {
        self.path.is_none() && self.sha256 == sha256_hex(SAMPLE_PNG)
    }

    /// The target this origin names, at `size`: the sample, or the file if it is still there
    /// with the same content; otherwise an error naming it and its hash.
    pub fn load(&self, size: usize, fit: Fit) -> anyhow::Result<Target> {
        match self.resolve()? {
            None => Target::sample(size, fit),
            Some(path) => {
                let decoded = load_image(&path)?;
                Target::from_image(&self.name, &decoded.image, size, fit)
            }
        }
    }

    /// Where the image is: `None` for the sample, the file's path if it is still there with
    /// the same content; otherwise an error naming it and its hash.
    pub fn resolve(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.is_sample() {
            return Ok(None);
        }
        let Some(path) = &self.path else {
            bail!(
                "the image {} (sha256 {}) was not opened from a file; pass it with --image",
                self.name,
                self.sha256
            );
        };
        let found = sha256_file(path).with_context(|| {
            format!(
                "the image {} (sha256 {}) is not there any more; pass it with --image",
                path.display(),
                self.sha256
            )
        })?;
        anyhow::ensure!(
            found == self.sha256,
            "{} has changed since (sha256 {found}, the run used {}); pass the image with --image",
            path.display(),
            self.sha256
        );
        Ok(Some(path.clone()))
    }
}

/// Everything needed to make a run's files again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// "inrlab 0.1.0".
    pub made_by: String,
    pub image: ImageOrigin,
    /// The folder a method trained on instead of the image (the wavelet operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<PathBuf>,
    /// The folder's images the run used, each with its SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_files: Vec<DatasetFile>,
    pub working_size: usize,
    pub fit: Fit,
    pub rng: RngKind,
    /// "cpu" or "gpu", and the adapter's name.
    pub backend: String,
    pub adapter: String,
    /// Every method run, with every parameter (a categorical one by its option's name).
    pub methods: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The mask the methods saw the image through (sparse reconstruction, the holdout
    /// protocol); `None`: every pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<crate::sparse::ObservationSpec>,
    /// "Fit at S/k, score at S": the factor k the working image was downsampled by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superres: Option<usize>,
}

/// One image of a folder a run trained on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatasetFile {
    pub name: String,
    pub sha256: String,
}

impl Provenance {
    pub fn new(
        image: ImageOrigin,
        working_size: usize,
        fit: Fit,
        rng: RngKind,
        backend: &dyn crate::compute::Backend,
        runs: &[(&MethodInfo, &ParamValues)],
    ) -> anyhow::Result<Self> {
        let names = (backend.kind().to_string(), backend.adapter_name());
        Self::with_backend_names(image, working_size, fit, rng, names, runs)
    }

    /// The same, with the backend named (`("cpu", adapter)`) rather than at hand: the window's
    /// UI thread knows it only from the worker's message.
    pub fn with_backend_names(
        image: ImageOrigin,
        working_size: usize,
        fit: Fit,
        rng: RngKind,
        (backend, adapter): (String, String),
        runs: &[(&MethodInfo, &ParamValues)],
    ) -> anyhow::Result<Self> {
        let mut methods = BTreeMap::new();
        for (info, params) in runs {
            let values = params
                .resolved(info.params)?
                .into_iter()
                .map(|(name, value)| {
                    let json = match value {
                        Resolved::Number(v) => serde_json::json!(v),
                        Resolved::Choice(choice) => serde_json::json!(choice),
                    };
                    (name, json)
                })
                .collect();
            methods.insert(info.name.to_owned(), values);
        }
        Ok(Provenance {
            made_by: made_by(),
            image,
            dataset: None,
            dataset_files: Vec::new(),
            working_size,
            fit,
            rng,
            backend,
            adapter,
            methods,
            observation: None,
            superres: None,
        })
    }

    /// The methods it ran, in registry order.
    pub fn method_infos(&self) -> anyhow::Result<Vec<&'static MethodInfo>> {
        let mut infos = Vec::new();
        for name in self.methods.keys() {
            infos.push(methods::find(name)?);
        }
        infos.sort_by_key(|info| {
            methods::registry()
                .iter()
                .position(|other| other.name == info.name)
        });
        Ok(infos)
    }

    /// `method`'s values as set explicitly (every one the record has).
    pub fn params_of(&self, info: &MethodInfo) -> anyhow::Result<ParamValues> {
        let Some(values) = self.methods.get(info.name) else {
            bail!("the file has no run of {}", info.name);
        };
        let mut params = ParamValues::new();
        for (name, value) in values {
            let Some(spec) = info.params.iter().find(|spec| spec.name == name) else {
                bail!(
                    "{} has no parameter {name} (a file from another version?)",
                    info.name
                );
            };
            let number = match value {
                serde_json::Value::Number(number) => number.as_f64().unwrap_or(f64::NAN),
                serde_json::Value::String(choice) if spec.is_choice() => {
                    spec.choice_index(choice)? as f64
                }
                other => bail!("{}: {name} is {other}, not a value", info.name),
            };
            params.set(name, number);
        }
        params.validate(info.name, info.params)?;
        Ok(params)
    }

    /// The `inrlab run` line that makes `method`'s run of this record again (into
    /// `out-<method>`): every parameter, as the record has it.
    pub fn command_line(&self, method: &str) -> Option<String> {
        let values = self.methods.get(method)?;
        let mut line = format!("inrlab run --method {method} --size {}", self.working_size);
        match (&self.dataset, self.image.resolve()) {
            (Some(folder), _) => line.push_str(&format!(" --dataset {}", quoted(folder))),
            (None, Ok(Some(path))) => line.push_str(&format!(" --image {}", quoted(&path))),
            (None, Ok(None)) => {}
            // Gone or changed: named anyway, so the line says what it needs.
            (None, Err(_)) => {
                if let Some(path) = &self.image.path {
                    line.push_str(&format!(" --image {}", quoted(path)));
                }
            }
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            // Whole numbers as such: --seed and the sizes take integers.
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
                _ => n.to_string(),
            },
            other => other.to_string(),
        };
        let fit = serde_json::to_value(self.fit)
            .map(|v| text(&v))
            .unwrap_or_default();
        let rng = serde_json::to_value(self.rng)
            .map(|v| text(&v))
            .unwrap_or_default();
        line.push_str(&format!(
            " --fit {fit} --rng {rng} --backend {}",
            self.backend
        ));
        for (name, value) in values {
            line.push_str(&format!(" --{name} {}", text(value)));
        }
        line.push_str(&format!(" --out out-{method}"));
        Some(line)
    }

    /// The record as PNG text chunks: the JSON under [`PNG_KEYWORD`], "Software", and a
    /// one-line "Description" for image viewers.
    pub fn png_text(&self) -> Vec<(String, String)> {
        let json = serde_json::to_string(self).unwrap_or_default();
        let methods: Vec<&str> = self.methods.keys().map(String::as_str).collect();
        vec![
            (PNG_KEYWORD.to_owned(), json),
            ("Software".to_owned(), self.made_by.clone()),
            (
                "Description".to_owned(),
                format!(
                    "{} on {} at {}² ({} backend); inrlab run --config <this file> makes it again",
                    methods.join(", "),
                    self.image.name,
                    self.working_size,
                    self.backend
                ),
            ),
        ]
    }

    /// Lines for the top of a CSV file, each starting with `# `.
    pub fn csv_header(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("# {}\n# provenance: {json}\n", self.made_by)
    }

    /// The columns [`csv_step_row`] writes; the set scores are empty for a run without a mask.
    pub const CSV_STEP_COLUMNS: &'static str = "step,label,psnr_db,loss,seconds,\
        unobserved_db,observed_db,validation_db,unobserved_ssim,observed_ssim,heldout_db";

    /// The record a file carries: a preset (this record as JSON), a metrics.json (its
    /// `provenance` field), a CSV (its header line), a PNG inrlab wrote (its text chunk) or a
    /// checkpoint (its metadata).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(256 << 20).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let from = |what: &str| format!("{} {what}", path.display());
        if let Some(record) = crate::checkpoint::provenance_from_header(&bytes) {
            return record.with_context(|| path.display().to_string());
        }
        if bytes.starts_with(b"\x89PNG") {
            let json = png_text(&bytes, PNG_KEYWORD)
                .with_context(|| from("is a PNG inrlab did not write (no inrlab text chunk)"))?;
            return serde_json::from_str(&json).with_context(|| from("has a damaged record"));
        }
        if bytes.starts_with(b"# ") {
            let text = String::from_utf8_lossy(&bytes);
            let line = text
                .lines()
                .find_map(|line| line.strip_prefix("# provenance: "))
                .with_context(|| from("has no provenance line"))?;
            return serde_json::from_str(line).with_context(|| from("has a damaged record"));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| from("is neither a PNG, a CSV nor JSON inrlab wrote"))?;
        let record = match value.get("provenance") {
            Some(inner) => inner.clone(),
            None => value,
        };
        serde_json::from_value(record).with_context(|| from("is not a record of an inrlab run"))
    }
}

/// One step as a CSV row of [`Provenance::CSV_STEP_COLUMNS`], without the line end. Labels
/// may hold commas ("scale 2 (ρ 0.62, …)"), so they are quoted, quotes doubled.
pub fn csv_step_row(
    step: usize,
    label: &str,
    psnr_db: f64,
    loss: Option<f64>,
    seconds: f64,
    sparse: Option<&crate::sparse::SetScores>,
) -> String {
    let label = label.replace('"', "\"\"");
    let number = |value: Option<f64>| value.map_or(String::new(), |v| v.to_string());
    let loss = loss.map_or(String::new(), |l| format!("{l:e}"));
    let sets = [
        sparse.map(|s| s.unobserved_db),
        sparse.map(|s| s.observed_db),
        sparse.and_then(|s| s.validation_db),
        sparse.map(|s| s.unobserved_ssim),
        sparse.map(|s| s.observed_ssim),
        sparse.and_then(|s| s.heldout_db),
    ]
    .map(number)
    .join(",");
    format!("{step},\"{label}\",{psnr_db},{loss},{seconds:.6},{sets}")
}

/// A path for a shell line, single-quoted when it needs to be.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The UTF-8 or Latin-1 text chunk `keyword` of a PNG in memory.
pub fn png_text(bytes: &[u8], keyword: &str) -> anyhow::Result<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().context("not a readable PNG")?;
    let info = reader.info();
    if let Some(chunk) = info.utf8_text.iter().find(|c| c.keyword == keyword) {
        return chunk.get_text().context("an unreadable text chunk");
    }
    if let Some(chunk) = (info.uncompressed_latin1_text.iter()).find(|c| c.keyword == keyword) {
        return Ok(chunk.text.clone());
    }
    bail!("no {keyword} text chunk")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuBackend;

    fn record() -> Provenance {
        let info = methods::find("fourier-mlp").unwrap();
        let mut params = ParamValues::new();
        params.set("optimizer", 1.0);
        params.set("steps", 7.0);
        Provenance::new(
            ImageOrigin::sample(),
            64,
            Fit::Stretch,
            RngKind::Numpy,
            &CpuBackend::new(),
            &[(info, &params)],
        )
        .unwrap()
    }

    #[test]
    fn a_record_keeps_every_parameter_and_gives_them_back() {
        let record = record();
        let info = methods::find("fourier-mlp").unwrap();
        let values = &record.methods["fourier-mlp"];
        assert_eq!(
            values.len(),
            info.params.len(),
            "every parameter, defaults included"
        );
        assert_eq!(values["optimizer"], "sgd");
        assert!(values.contains_key("seed"));
        let params = record.params_of(info).unwrap();
        assert_eq!(params.explicit("steps"), Some(7.0));
        assert_eq!(params.explicit("optimizer"), Some(1.0));
        assert!(record.image.is_sample());
        assert_eq!(record.image.sha256.len(), 64);
    }

    #[test]
    fn a_record_round_trips_through_json_csv_and_png() {
        let record = record();
        let dir = std::env::temp_dir().join(format!("inrlab-provenance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("preset.json");
        std::fs::write(&json, serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(Provenance::read(&json).unwrap(), record);
        let metrics = dir.join("metrics.json");
        let wrapped = serde_json::json!({"method": "x", "provenance": record});
        std::fs::write(&metrics, serde_json::to_vec(&wrapped).unwrap()).unwrap();
        assert_eq!(Provenance::read(&metrics).unwrap(), record);
        let csv = dir.join("metrics.csv");
        std::fs::write(&csv, format!("{}step,psnr_db\n1,20\n", record.csv_header())).unwrap();
        assert_eq!(Provenance::read(&csv).unwrap(), record);
        let png = dir.join("final.png");
        let image = image::RgbImage::from_pixel(3, 2, image::Rgb([10, 200, 30]));
        let bytes = crate::output::png_bytes_with_text(&image, &record.png_text()).unwrap();
        std::fs::write(&png, &bytes).unwrap();
        assert_eq!(Provenance::read(&png).unwrap(), record);
        // Still an ordinary PNG.
        assert_eq!(image::open(&png).unwrap().to_rgb8(), image);
        // A PNG from elsewhere and a stranger's JSON are refused with a reason.
        let plain = dir.join("plain.png");
        std::fs::write(&plain, crate::output::png_bytes(&image).unwrap()).unwrap();
        let error = format!("{:#}", Provenance::read(&plain).unwrap_err());
        assert!(error.contains("did not write"), "{error}");
        let stranger = dir.join("other.json");
        std::fs::write(&stranger, "{\"hello\": 1}").unwrap();
        assert!(Provenance::read(&stranger).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_or_missing_image_is_named_with_its_hash() {
        let dir = std::env::temp_dir().join(format!("inrlab-origin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("picture.png");
        std::fs::write(&path, SAMPLE_PNG).unwrap();
        let origin = ImageOrigin::file(&path).unwrap();
        assert!(!origin.is_sample());
        assert_eq!(origin.load(16, Fit::Stretch).unwrap().size, 16);
        std::fs::write(&path, &SAMPLE_PNG[..SAMPLE_PNG.len() - 10]).unwrap();
        let error = format!("{:#}", origin.load(16, Fit::Stretch).err().unwrap());
        assert!(
            error.contains("has changed") && error.contains(&origin.sha256),
            "{error}"
        );
        std::fs::remove_file(&path).unwrap();
        let error = format!("{:#}", origin.load(16, Fit::Stretch).err().unwrap());
        assert!(
            error.contains("not there") && error.contains(&origin.sha256),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
