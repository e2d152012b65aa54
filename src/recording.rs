//! Recording a sequence of RGB frames into a GIF, an APNG or an MP4 file.
//!
//! Encoding is slow next to drawing or training, so it runs on its own thread, off the UI and
//! compute threads. Frames reach it through a bounded queue; when the encoder falls behind a
//! frame is dropped (and counted) rather than stalling the caller. The file is written under a
//! temporary name in the same folder and renamed only when the recording is complete, so an
//! interrupted recording never leaves half a file under the final name.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, anyhow, bail};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::output::{Existing, check_writable};

/// The container a recording is written as, chosen by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingFormat {
    Gif,
    Apng,
    Mp4,
}

impl RecordingFormat {
    /// `.gif`, `.png` or `.apng`, `.mp4` (any case).
    pub fn from_path(path: &Path) -> anyhow::Result<Self> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("gif") => Ok(Self::Gif),
            Some("png" | "apng") => Ok(Self::Apng),
            Some("mp4") => Ok(Self::Mp4),
            _ => bail!(
                "cannot record to {}: the extension must be .gif, .png, .apng or .mp4",
                path.display()
            ),
        }
    }
}

/// How a recording is made.
#[derive(Clone, Debug)]
pub struct RecordingOptions {
    /// Playback frames per second, 1 to 60. GIF stores delays in hundredths of a second, so
    /// above 50 fps a GIF plays at 50.
    pub fps: u32,
    /// The most frames accepted; [`Recorder::push`] answers [`PushOutcome::CapReached`] after.
    pub max_frames: usize,
    /// How many frames may wait for the encoder before further ones are dropped (at least 1).
    pub queue: usize,
    /// Provenance written into the file: APNG as PNG text chunks (tEXt when the value is
    /// ASCII, iTXt otherwise); GIF as one comment extension of `key=value` lines (the image
    /// crate's GifEncoder has no comment API, so it is added just before the GIF trailer);
    /// MP4 as ffmpeg's `-metadata comment=` with the same lines. Keys must be PNG keywords:
    /// 1 to 79 Latin-1 characters.
    pub text: Vec<(String, String)>,
}

impl Default for RecordingOptions {
    fn default() -> Self {
        Self {
            fps: 15,
            // A minute at 15 fps.
            max_frames: 900,
            queue: 8,
            text: Vec::new(),
        }
    }
}

/// What became of a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// On its way to the encoder.
    Queued,
    /// The encoder was behind and the queue full; the frame was dropped and counted.
    Dropped,
    /// `max_frames` frames were accepted, or the encoder stopped on an error: stop pushing and
    /// call [`Recorder::finish`] (which reports the error, if any).
    CapReached,
}

/// What a finished recording wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub frames: usize,
    pub dropped: usize,
    pub bytes: u64,
}

struct QueuedFrame {
    width: usize,
    height: usize,
    rgb: Arc<Vec<u8>>,
}

/// The encoder thread and the queue feeding it, while the recording is open.
struct Encoding {
    sender: Sender<QueuedFrame>,
    thread: JoinHandle<anyhow::Result<()>>,
    temporary: PathBuf,
}

/// A recording in progress: push frames, then [`finish`](Recorder::finish) (or drop it, which
/// finishes too).
///
/// Every frame is fitted to the first frame's size by nearest-neighbour scaling, so a resized
/// view keeps all of its picture (stretched if the aspect changed) instead of being cropped.
pub struct Recorder {
    path: PathBuf,
    existing: Existing,
    max_frames: usize,
    accepted: AtomicUsize,
    dropped: AtomicUsize,
    encoding: Option<Encoding>,
}

impl Recorder {
    /// Checks everything that can be checked before the first frame (the extension, an existing
    /// file, the folder is writable, ffmpeg for MP4, the options) and starts the encoder thread.
    pub fn start(
        path: &Path,
        options: RecordingOptions,
        existing: Existing,
    ) -> anyhow::Result<Recorder> {
        Self::start_gated(path, options, existing, None)
    }

    /// `start`, with the encoder thread waiting for `gate` before it takes the first frame, so a
    /// test can fill the queue deterministically.
    fn start_gated(
        path: &Path,
        options: RecordingOptions,
        existing: Existing,
        gate: Option<Receiver<()>>,
    ) -> anyhow::Result<Recorder> {
        let format = RecordingFormat::from_path(path)?;
        check_options(&options)?;
        check_writable(&[path.to_path_buf()], existing)?;
        let ffmpeg = match format {
            RecordingFormat::Mp4 => Some(
                find_on_path("ffmpeg")
                    .context("MP4 needs ffmpeg on PATH; record to .gif or .png instead")?,
            ),
            _ => None,
        };
        let file_name = path
            .file_name()
            .with_context(|| format!("cannot record to {}: not a file path", path.display()))?
            .to_string_lossy()
            .into_owned();
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&folder).map_err(|error| {
            anyhow!(
                "cannot record to {}: cannot create folder {}: {error}",
                path.display(),
                folder.display()
            )
        })?;
        let temporary = temporary_path(path, &file_name, "tmp");
        // Creating the temporary file now is the writability check: it fails here, not after
        // a minute of recording.
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow!(
                        "cannot record to {}: {} exists (another recording to this file, or a \
                         crashed one; remove it)",
                        path.display(),
                        temporary.display()
                    )
                } else {
                    anyhow!(
                        "cannot record to {}: cannot write in folder {}: {error}",
                        path.display(),
                        folder.display()
                    )
                }
            })?;

        let max_frames = options.max_frames;
        let (sender, receiver) = crossbeam_channel::bounded(options.queue);
        let job = EncoderJob {
            format,
            options,
            temporary: temporary.clone(),
            spool: temporary_path(path, &file_name, "frames.tmp"),
            ffmpeg,
        };
        let spawned = std::thread::Builder::new()
            .name("recording encoder".to_owned())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                job.run(file, receiver)
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(error) => {
                let _ = std::fs::remove_file(&temporary);
                bail!("cannot start the recording encoder: {error}");
            }
        };
        Ok(Recorder {
            path: path.to_path_buf(),
            existing,
            max_frames,
            accepted: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            encoding: Some(Encoding {
                sender,
                thread,
                temporary,
            }),
        })
    }

    /// Hands a frame (`width * height` RGB pixels, row-major) to the encoder without waiting.
    ///
    /// # Panics
    /// If `rgb` is not `width * height * 3` bytes or the frame is empty: a caller's bug.
    pub fn push(&self, width: usize, height: usize, rgb: Arc<Vec<u8>>) -> PushOutcome {
        self.enqueue(width, height, rgb, false)
    }

    /// The same, waiting for room in the queue instead of dropping the frame: for the command
    /// line, where every frame is wanted and nobody watches the compute.
    pub fn push_waiting(&self, width: usize, height: usize, rgb: Arc<Vec<u8>>) -> PushOutcome {
        self.enqueue(width, height, rgb, true)
    }

    fn enqueue(&self, width: usize, height: usize, rgb: Arc<Vec<u8>>, wait: bool) -> PushOutcome {
        assert!(
            width > 0 && height > 0 && rgb.len() == width * height * 3,
            "a recorded frame must be width * height RGB pixels"
        );
        let Some(encoding) = &self.encoding else {
            return PushOutcome::CapReached;
        };
        // Reserving the slot before sending keeps the cap exact even with several pushers.
        let reserved = self
            .accepted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_frames).then_some(n + 1)
            });
        if reserved.is_err() {
            return PushOutcome::CapReached;
        }
        let frame = QueuedFrame { width, height, rgb };
        let sent = if wait {
            (encoding.sender.send(frame)).map_err(|e| TrySendError::Disconnected(e.into_inner()))
        } else {
            encoding.sender.try_send(frame)
        };
        match sent {
            Ok(()) => PushOutcome::Queued,
            Err(TrySendError::Full(_)) => {
                self.accepted.fetch_sub(1, Ordering::SeqCst);
                self.dropped.fetch_add(1, Ordering::SeqCst);
                PushOutcome::Dropped
            }
            // The encoder stopped on an error; `finish` reports it.
            Err(TrySendError::Disconnected(_)) => {
                self.accepted.fetch_sub(1, Ordering::SeqCst);
                PushOutcome::CapReached
            }
        }
    }

    /// Frames accepted so far (queued or encoded).
    pub fn frames(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Frames dropped because the queue was full.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Where the file will be once finished.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the queue, waits for the encoder to write out every accepted frame, and only then
    /// puts the file under its name.
    pub fn finish(mut self) -> anyhow::Result<RecordingSummary> {
        self.finish_encoding()
    }

    fn finish_encoding(&mut self) -> anyhow::Result<RecordingSummary> {
        let Some(Encoding {
            sender,
            thread,
            temporary,
        }) = self.encoding.take()
        else {
            bail!(
                "the recording of {} was already finished",
                self.path.display()
            );
        };
        // Closing the queue ends the encoder's loop once it has drained it.
        drop(sender);
        let encoded = match thread.join() {
            Ok(result) => result,
            Err(payload) => Err(anyhow!(
                "the encoder panicked: {}",
                crate::panic_message(&*payload)
            )),
        };
        let committed = encoded.and_then(|()| {
            // The file may have appeared while recording; still refuse to replace it unseen.
            if self.existing == Existing::Refuse {
                check_writable(std::slice::from_ref(&self.path), Existing::Refuse)?;
            }
            std::fs::rename(&temporary, &self.path)
                .with_context(|| format!("cannot rename {}", temporary.display()))
        });
        if let Err(error) = committed {
            let _ = std::fs::remove_file(&temporary);
            bail!("cannot record {}: {error:#}", self.path.display());
        }
        let bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(RecordingSummary {
            path: self.path.clone(),
            frames: self.frames(),
            dropped: self.dropped(),
            bytes,
        })
    }
}

impl Drop for Recorder {
    /// A recording still open (the window closed mid-recording) is finished, not lost.
    fn drop(&mut self) {
        if self.encoding.is_some()
            && let Err(error) = self.finish_encoding()
        {
            eprintln!("inrlab: {error:#}");
        }
    }
}

fn check_options(options: &RecordingOptions) -> anyhow::Result<()> {
    if !(1..=60).contains(&options.fps) {
        bail!("the recording's fps must be 1 to 60, not {}", options.fps);
    }
    if options.max_frames == 0 {
        bail!("the recording's frame cap must be at least 1");
    }
    if options.queue == 0 {
        bail!("the recording's queue must hold at least 1 frame");
    }
    for (key, _) in &options.text {
        let characters = key.chars().count();
        if !(1..=79).contains(&characters) || key.chars().any(|c| c as u32 > 0xFF) {
            bail!("the recording's text key {key:?} must be 1 to 79 Latin-1 characters");
        }
    }
    Ok(())
}

/// `.name.<pid>.<suffix>` next to `path`, as `output::write_atomic` names its temporary files.
fn temporary_path(path: &Path, file_name: &str, suffix: &str) -> PathBuf {
    path.with_file_name(format!(".{file_name}.{}.{suffix}", std::process::id()))
}

/// The first executable called `program` in the folders of PATH.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let names = if cfg!(windows) {
        vec![format!("{program}.exe"), program.to_owned()]
    } else {
        vec![program.to_owned()]
    };
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|folder| names.iter().map(move |name| folder.join(name)))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Everything the encoder thread needs besides the frames.
struct EncoderJob {
    format: RecordingFormat,
    options: RecordingOptions,
    temporary: PathBuf,
    spool: PathBuf,
    ffmpeg: Option<PathBuf>,
}

impl EncoderJob {
    /// Encodes frames until the queue closes. Returning (on an error too) drops the receiver,
    /// which tells `push` to stop.
    fn run(self, file: File, receiver: Receiver<QueuedFrame>) -> anyhow::Result<()> {
        let mut queued = receiver.iter();
        let first = queued.next().context("no frames were recorded")?;
        let (width, height) = (first.width, first.height);
        let frames = std::iter::once(first)
            .chain(queued)
            .map(|frame| fit_frame(frame, width, height));
        let fps = self.options.fps;
        let text = &self.options.text;
        match self.format {
            RecordingFormat::Gif => encode_gif(file, width, height, fps, text, frames),
            RecordingFormat::Apng => {
                encode_apng(file, &self.spool, width, height, fps, text, frames)
            }
            RecordingFormat::Mp4 => {
                // ffmpeg writes the temporary file itself.
                drop(file);
                let ffmpeg = self.ffmpeg.as_deref().context("ffmpeg was not found")?;
                encode_mp4(ffmpeg, &self.temporary, width, height, fps, text, frames)
            }
        }
    }
}

/// The frame's pixels at `width` × `height`: as they are when the size matches, else scaled
/// (nearest neighbour).
fn fit_frame(frame: QueuedFrame, width: usize, height: usize) -> Arc<Vec<u8>> {
    if frame.width == width && frame.height == height {
        return frame.rgb;
    }
    let mut scaled = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        let source_y = y * frame.height / height;
        for x in 0..width {
            let source_x = x * frame.width / width;
            let at = (source_y * frame.width + source_x) * 3;
            scaled.extend_from_slice(&frame.rgb[at..at + 3]);
        }
    }
    Arc::new(scaled)
}

/// `key=value` lines, the provenance as one comment for GIF and MP4.
fn comment_lines(text: &[(String, String)]) -> String {
    text.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const GIF_TRAILER: u8 = 0x3B;

/// Streams the frames into a looping GIF.
fn encode_gif(
    file: File,
    width: usize,
    height: usize,
    fps: u32,
    text: &[(String, String)],
    frames: impl Iterator<Item = Arc<Vec<u8>>>,
) -> anyhow::Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut writer = BufWriter::new(file);
    {
        // Speed 30 of 1..=30 (the fastest palette search): speed 10 took 90% more time than
        // the compute of a 64² Fourier MLP run recorded every step, speed 30 63%; the
        // quantised frames still look right.
        let mut encoder = GifEncoder::new_with_speed(&mut writer, 30);
        encoder.set_repeat(Repeat::Infinite)?;
        let delay = image::Delay::from_numer_denom_ms(1000, fps);
        for rgb in frames {
            let rgba = image::RgbaImage::from_fn(width as u32, height as u32, |x, y| {
                let at = (y as usize * width + x as usize) * 3;
                image::Rgba([rgb[at], rgb[at + 1], rgb[at + 2], 255])
            });
            encoder
                .encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .context("cannot encode a GIF frame")?;
        }
        // Dropping the encoder writes the trailer (into the buffer; its errors surface below).
    }
    let mut file = writer
        .into_inner()
        .map_err(|error| error.into_error())
        .context("cannot write the GIF")?;
    // The image crate's encoder has no comment API: put the comment extension just before the
    // trailer, where GIF89a allows one. Reading the trailer back also proves the file is whole.
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    if last[0] != GIF_TRAILER {
        bail!("the GIF encoder did not finish the file");
    }
    if !text.is_empty() {
        let comment = comment_lines(text);
        let mut block = vec![0x21, 0xFE];
        for piece in comment.as_bytes().chunks(255) {
            block.push(piece.len() as u8);
            block.extend_from_slice(piece);
        }
        block.extend_from_slice(&[0x00, GIF_TRAILER]);
        file.seek(SeekFrom::End(-1))?;
        file.write_all(&block)?;
    }
    file.sync_all()?;
    Ok(())
}

/// Removes a file when dropped: the APNG spool is gone whatever happens.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Writes a looping APNG. APNG states its frame count before the first frame, so the frames are
/// spooled raw to a temporary file next to the recording and encoded when the queue closes:
/// memory holds one frame, the disk up to `max_frames * width * height * 3` bytes.
fn encode_apng(
    file: File,
    spool_path: &Path,
    width: usize,
    height: usize,
    fps: u32,
    text: &[(String, String)],
    frames: impl Iterator<Item = Arc<Vec<u8>>>,
) -> anyhow::Result<()> {
    let _remove_spool = RemoveOnDrop(spool_path);
    let mut spool = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(spool_path)
        .with_context(|| format!("cannot create {}", spool_path.display()))?;
    let mut count: u32 = 0;
    {
        let mut spool_writer = BufWriter::new(&mut spool);
        for rgb in frames {
            spool_writer
                .write_all(&rgb)
                .context("cannot spool a frame")?;
            count += 1;
        }
        spool_writer.flush().context("cannot spool a frame")?;
    }
    spool.seek(SeekFrom::Start(0))?;

    let mut writer = BufWriter::new(file);
    let mut encoder = png::Encoder::new(&mut writer, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_animated(count, 0)?;
    // A delay of exactly 1/fps s.
    encoder.set_frame_delay(1, fps as u16)?;
    for (key, value) in text {
        if value.is_ascii() {
            encoder.add_text_chunk(key.clone(), value.clone())?;
        } else {
            encoder.add_itxt_chunk(key.clone(), value.clone())?;
        }
    }
    let mut png_writer = encoder.write_header().context("cannot write the APNG")?;
    let mut spool_reader = BufReader::new(&mut spool);
    let mut rgb = vec![0u8; width * height * 3];
    for _ in 0..count {
        spool_reader
            .read_exact(&mut rgb)
            .context("cannot read a spooled frame")?;
        png_writer
            .write_image_data(&rgb)
            .context("cannot encode an APNG frame")?;
    }
    png_writer.finish().context("cannot write the APNG")?;
    let file = writer
        .into_inner()
        .map_err(|error| error.into_error())
        .context("cannot write the APNG")?;
    file.sync_all()?;
    Ok(())
}

/// Pipes the frames through ffmpeg into an H.264 MP4. yuv420p needs even sides, so an odd
/// width or height gets one black column or row.
fn encode_mp4(
    ffmpeg: &Path,
    temporary: &Path,
    width: usize,
    height: usize,
    fps: u32,
    text: &[(String, String)],
    frames: impl Iterator<Item = Arc<Vec<u8>>>,
) -> anyhow::Result<()> {
    let (even_width, even_height) = (width + width % 2, height + height % 2);
    let mut command = Command::new(ffmpeg);
    command
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{even_width}x{even_height}")])
        .args(["-r", &fps.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(["-movflags", "+faststart"]);
    if !text.is_empty() {
        command.args(["-metadata", &format!("comment={}", comment_lines(text))]);
    }
    // The temporary name does not end in .mp4, so name the container.
    command.args(["-f", "mp4"]).arg(temporary);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", ffmpeg.display()))?;
    let stdin = child.stdin.take().context("ffmpeg has no stdin")?;
    let mut stderr = child.stderr.take().context("ffmpeg has no stderr")?;
    // Read ffmpeg's messages as they come, so a chatty ffmpeg never blocks on a full pipe.
    let messages = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let fed = (|| -> std::io::Result<()> {
        let mut input = BufWriter::new(stdin);
        let padding = vec![0u8; even_width * 3];
        for rgb in frames {
            for row in rgb.chunks_exact(width * 3) {
                input.write_all(row)?;
                input.write_all(&padding[..(even_width - width) * 3])?;
            }
            if even_height != height {
                input.write_all(&padding)?;
            }
        }
        input.flush()
        // Dropping `input` closes ffmpeg's stdin: the end of the video.
    })();
    let status = child.wait().context("cannot wait for ffmpeg")?;
    let messages = messages.join().unwrap_or_default();
    if !status.success() {
        bail!("ffmpeg failed ({status}): {}", messages.trim());
    }
    fed.context("cannot feed ffmpeg")?;
    File::options().write(true).open(temporary)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;

    const WIDTH: usize = 24;
    const HEIGHT: usize = 16;

    /// A fresh, empty folder for one test.
    fn test_folder(name: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("inrlab-recording-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    }

    /// A gradient that shifts with `index`, so frames differ.
    fn gradient(width: usize, height: usize, index: usize) -> Arc<Vec<u8>> {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&[
                    (x * 10 + index * 40) as u8,
                    (y * 15) as u8,
                    (index * 60) as u8,
                ]);
            }
        }
        Arc::new(rgb)
    }

    fn options(max_frames: usize, queue: usize) -> RecordingOptions {
        RecordingOptions {
            fps: 10,
            max_frames,
            queue,
            text: Vec::new(),
        }
    }

    /// Asserts the folder holds exactly the named file: no temporary or spool file is left.
    fn assert_only_file(folder: &Path, name: &str) {
        let names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![name.to_owned()]);
    }

    fn gif_frames(path: &Path) -> Vec<image::Frame> {
        let reader = BufReader::new(File::open(path).unwrap());
        image::codecs::gif::GifDecoder::new(reader)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    }

    #[test]
    fn gif_frames_and_comment_decode_back() {
        let folder = test_folder("gif");
        let path = folder.join("run.gif");
        let mut recording_options = options(100, 8);
        recording_options.text = vec![("seed".to_owned(), "7".to_owned())];
        let recorder = Recorder::start(&path, recording_options, Existing::Refuse).unwrap();
        for index in 0..5 {
            assert_eq!(
                recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, index)),
                PushOutcome::Queued
            );
        }
        // The file appears only at finish.
        assert!(!path.exists());
        let summary = recorder.finish().unwrap();
        assert_eq!(summary.frames, 5);
        assert_eq!(summary.dropped, 0);
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());

        let frames = gif_frames(&path);
        assert_eq!(frames.len(), 5);
        for frame in &frames {
            assert_eq!(frame.buffer().dimensions(), (WIDTH as u32, HEIGHT as u32));
            assert_eq!(frame.delay().numer_denom_ms(), (100, 1));
        }
        assert!(frames.windows(2).any(|w| w[0].buffer() != w[1].buffer()));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.windows(9).any(|w| w == b"\x21\xFE\x06seed=7"));
        assert_only_file(&folder, "run.gif");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn apng_frames_and_text_round_trip() {
        let folder = test_folder("apng");
        let path = folder.join("run.png");
        let mut recording_options = options(100, 8);
        recording_options.text = vec![
            ("Software".to_owned(), "inrlab".to_owned()),
            ("method".to_owned(), "wavelet σ=0.5".to_owned()),
        ];
        let recorder = Recorder::start(&path, recording_options, Existing::Refuse).unwrap();
        let pushed: Vec<_> = (0..4).map(|i| gradient(WIDTH, HEIGHT, i)).collect();
        for rgb in &pushed {
            assert_eq!(
                recorder.push(WIDTH, HEIGHT, rgb.clone()),
                PushOutcome::Queued
            );
        }
        assert_eq!(recorder.finish().unwrap().frames, 4);

        let decoder = png::Decoder::new(BufReader::new(File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info();
        let animation = info.animation_control.unwrap();
        assert_eq!((animation.num_frames, animation.num_plays), (4, 0));
        let latin1: Vec<_> = info
            .uncompressed_latin1_text
            .iter()
            .map(|chunk| (chunk.keyword.as_str(), chunk.text.as_str()))
            .collect();
        assert_eq!(latin1, vec![("Software", "inrlab")]);
        let utf8: Vec<_> = info
            .utf8_text
            .iter()
            .map(|chunk| (chunk.keyword.clone(), chunk.get_text().unwrap()))
            .collect();
        assert_eq!(
            utf8,
            vec![("method".to_owned(), "wavelet σ=0.5".to_owned())]
        );
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        for rgb in &pushed {
            let frame = reader.next_frame(&mut buffer).unwrap();
            assert_eq!((frame.width, frame.height), (WIDTH as u32, HEIGHT as u32));
            // Lossless: the frames come back as pushed.
            assert_eq!(&buffer[..frame.buffer_size()], &rgb[..]);
        }

        let still = image::open(&path).unwrap().into_rgb8();
        assert_eq!(still.dimensions(), (WIDTH as u32, HEIGHT as u32));
        assert_eq!(still.as_raw(), &*pushed[0]);
        assert_only_file(&folder, "run.png");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn frames_of_another_size_are_scaled_to_the_first() {
        let folder = test_folder("scaled");
        let path = folder.join("run.apng");
        let recorder = Recorder::start(&path, options(100, 8), Existing::Refuse).unwrap();
        recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, 0));
        let small = gradient(WIDTH / 2, HEIGHT / 2, 1);
        recorder.push(WIDTH / 2, HEIGHT / 2, small.clone());
        recorder.finish().unwrap();

        let decoder = png::Decoder::new(BufReader::new(File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buffer).unwrap();
        let frame = reader.next_frame(&mut buffer).unwrap();
        assert_eq!((frame.width, frame.height), (WIDTH as u32, HEIGHT as u32));
        // Nearest neighbour at twice the size: every source pixel covers 2 × 2.
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let at = (y * WIDTH + x) * 3;
                let source = ((y / 2) * (WIDTH / 2) + x / 2) * 3;
                assert_eq!(buffer[at..at + 3], small[source..source + 3]);
            }
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn the_frame_cap_stops_accepting() {
        let folder = test_folder("cap");
        let path = folder.join("run.gif");
        let recorder = Recorder::start(&path, options(3, 8), Existing::Refuse).unwrap();
        let outcomes: Vec<_> = (0..5)
            .map(|i| recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, i)))
            .collect();
        assert_eq!(
            outcomes,
            [
                PushOutcome::Queued,
                PushOutcome::Queued,
                PushOutcome::Queued,
                PushOutcome::CapReached,
                PushOutcome::CapReached
            ]
        );
        assert_eq!(recorder.frames(), 3);
        assert_eq!(recorder.finish().unwrap().frames, 3);
        assert_eq!(gif_frames(&path).len(), 3);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn a_full_queue_drops_frames_rather_than_stalling() {
        let folder = test_folder("drops");
        let path = folder.join("run.gif");
        // The encoder waits at the gate, so after the first frame fills the queue of one,
        // every further push meets a full queue; were push blocking, this test would hang.
        let (open_gate, gate) = crossbeam_channel::bounded(1);
        let recorder =
            Recorder::start_gated(&path, options(1000, 1), Existing::Refuse, Some(gate)).unwrap();
        let pushes = 200;
        for i in 0..pushes {
            recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, i));
        }
        assert!(recorder.dropped() > 0);
        assert_eq!(recorder.frames() + recorder.dropped(), pushes);
        assert_eq!(recorder.frames(), 1);
        open_gate.send(()).unwrap();
        let summary = recorder.finish().unwrap();
        assert_eq!((summary.frames, summary.dropped), (1, pushes - 1));
        assert_eq!(gif_frames(&path).len(), 1);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn an_existing_file_is_refused_unless_overwriting() {
        let folder = test_folder("existing");
        let path = folder.join("run.gif");
        std::fs::write(&path, b"keep").unwrap();
        let error = Recorder::start(&path, options(10, 8), Existing::Refuse)
            .err()
            .unwrap();
        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");

        let recorder = Recorder::start(&path, options(10, 8), Existing::Overwrite).unwrap();
        recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, 0));
        // The old file stays until the new one is complete.
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
        recorder.finish().unwrap();
        assert_eq!(gif_frames(&path).len(), 1);
        assert_only_file(&folder, "run.gif");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn an_unwritable_folder_or_a_path_under_a_file_is_refused() {
        let folder = test_folder("unwritable");
        let regular = folder.join("plain.txt");
        std::fs::write(&regular, b"x").unwrap();
        let error = Recorder::start(&regular.join("run.gif"), options(10, 8), Existing::Refuse)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("cannot create folder"),
            "{error}"
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let locked = folder.join("locked");
            std::fs::create_dir(&locked).unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
            // Root writes anywhere; the refusal can only be checked where the folder is
            // really read-only.
            let probe = locked.join("probe");
            if std::fs::write(&probe, b"").is_ok() {
                std::fs::remove_file(&probe).unwrap();
            } else {
                let error =
                    Recorder::start(&locked.join("run.gif"), options(10, 8), Existing::Refuse)
                        .err()
                        .unwrap();
                assert!(
                    error.to_string().contains("cannot write in folder"),
                    "{error}"
                );
            }
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn unknown_extensions_and_bad_options_are_refused() {
        let folder = test_folder("extension");
        for name in ["run.jpg", "run"] {
            let error = Recorder::start(&folder.join(name), options(10, 8), Existing::Refuse)
                .err()
                .unwrap();
            assert!(
                error.to_string().contains(".gif, .png, .apng or .mp4"),
                "{error}"
            );
        }
        let mut bad_fps = options(10, 8);
        bad_fps.fps = 0;
        assert!(Recorder::start(&folder.join("run.gif"), bad_fps, Existing::Refuse).is_err());
        let mut bad_key = options(10, 8);
        bad_key.text = vec![(String::new(), "v".to_owned())];
        assert!(Recorder::start(&folder.join("run.gif"), bad_key, Existing::Refuse).is_err());
        // Nothing was left behind by the refusals.
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn mp4_without_ffmpeg_is_refused() {
        if find_on_path("ffmpeg").is_some() {
            // Covered by mp4_encodes_through_ffmpeg.
            return;
        }
        let folder = test_folder("no-ffmpeg");
        let error = Recorder::start(&folder.join("run.mp4"), options(10, 8), Existing::Refuse)
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "MP4 needs ffmpeg on PATH; record to .gif or .png instead"
        );
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn mp4_encodes_through_ffmpeg() {
        if find_on_path("ffmpeg").is_none() {
            println!("skipped: ffmpeg is not on PATH, so the MP4 encode was not tested");
            return;
        }
        let folder = test_folder("mp4");
        let path = folder.join("run.mp4");
        let mut recording_options = options(100, 8);
        recording_options.text = vec![("seed".to_owned(), "7".to_owned())];
        let recorder = Recorder::start(&path, recording_options, Existing::Refuse).unwrap();
        // Odd sides: padded to even for yuv420p.
        for index in 0..5 {
            recorder.push(23, 15, gradient(23, 15, index));
        }
        let summary = recorder.finish().unwrap();
        assert_eq!(summary.frames, 5);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp");
        assert_only_file(&folder, "run.mp4");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    /// The MP4 plumbing (arguments, odd-side padding, failure reports) through a stand-in
    /// for ffmpeg that copies its input to the output path, or fails.
    #[cfg(unix)]
    #[test]
    fn mp4_frames_are_piped_padded_and_failures_reported() {
        use std::os::unix::fs::PermissionsExt;
        let folder = test_folder("stand-in");
        let stand_in = |name: &str, script: &str| {
            let program = folder.join(name);
            std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
            program
        };
        let copying = stand_in("copying", r#"for last; do :; done; cat > "$last""#);
        let output = folder.join("out.raw");
        let frames = (0..5).map(|index| gradient(23, 15, index));
        encode_mp4(&copying, &output, 23, 15, 10, &[], frames).unwrap();
        assert_eq!(std::fs::metadata(&output).unwrap().len(), 5 * 24 * 16 * 3);

        let failing = stand_in("failing", "echo 'no encoder libx264' >&2; exit 1");
        let frames = (0..5).map(|index| gradient(23, 15, index));
        let error = encode_mp4(&failing, &output, 23, 15, 10, &[], frames).unwrap_err();
        assert!(error.to_string().contains("ffmpeg failed"), "{error}");
        assert!(error.to_string().contains("no encoder libx264"), "{error}");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn dropping_without_finish_writes_the_whole_file() {
        let folder = test_folder("drop");
        let path = folder.join("run.gif");
        {
            let recorder = Recorder::start(&path, options(100, 8), Existing::Refuse).unwrap();
            for index in 0..3 {
                recorder.push(WIDTH, HEIGHT, gradient(WIDTH, HEIGHT, index));
            }
        }
        assert_eq!(gif_frames(&path).len(), 3);
        assert_only_file(&folder, "run.gif");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn encoder_errors_come_back_from_finish_and_leave_no_file() {
        let folder = test_folder("encoder-error");
        // GIF sides are 16-bit: the encoder refuses this frame.
        let path = folder.join("run.gif");
        let recorder = Recorder::start(&path, options(100, 8), Existing::Refuse).unwrap();
        recorder.push(70_000, 1, Arc::new(vec![0; 70_000 * 3]));
        let error = recorder.finish().unwrap_err();
        assert!(
            error.to_string().contains(&*path.to_string_lossy()),
            "{error}"
        );

        // No frames at all is an error too, and writes nothing.
        let empty = Recorder::start(&path, options(100, 8), Existing::Refuse).unwrap();
        let error = empty.finish().unwrap_err();
        assert!(error.to_string().contains("no frames"), "{error}");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
