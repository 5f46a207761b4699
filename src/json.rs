//! A lean JSON reader for admission requests: serde decoding of the parts the webhook reads,
//! and a block-wise skip of the parts it does not.
//!
//! A Rollout's AdmissionReview is typically 10-20 KB (two copies of the object, managedFields,
//! kubectl's last-applied copy), and the rules read a few hundred bytes of it. serde_json reads
//! every skipped value token by token; on the load-test review that costs more CPU than TLS,
//! HTTP and the rule engine together. This reader decodes what a view asks for exactly as
//! serde_json does, and skips everything else 64 bytes at a time with bit masks.
//!
//! # What is checked
//! - The whole body is UTF-8, and after the top-level value comes only whitespace.
//! - Every value that is *read* is checked like serde_json checks it (it is serde_json's
//!   grammar, and escaped strings are decoded by serde_json itself).
//! - A value that is *skipped* is checked for structure only: as many brackets and braces
//!   close as open (counted together, so `[1}` passes), its strings end, hold no raw control
//!   character and only valid escapes, and there is no backslash outside a string. The
//!   grammar between its tokens is not checked (`[1 2]`, `{"a" 1}` or a raw control character
//!   between tokens pass). The API server's encoder never writes such JSON, and nothing the
//!   webhook answers depends on a skipped value. When a view later reads an object the
//!   envelope pass skipped and fails, the caller checks the whole body with serde_json and
//!   refuses it if that fails too (`admission`).
//!
//! # Falling back
//! Whatever this reader does not do exactly like serde_json is an [`Error`]: numbers with a
//! fraction or exponent, integers past 64 bits, `-0`, nesting past [`MAX_DEPTH`], enums. The
//! caller then decodes with serde_json, which stays the reference for every answer and every
//! error message; tests compare the two readers on the corpus, and a fuzz target compares them
//! on arbitrary input.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// Nesting this reader accepts, values it reads and values it skips together. serde_json
/// refuses past 128, so anything deeper than this is left to it.
pub const MAX_DEPTH: usize = 100;

/// Why the lean reader gave up. Never shown to users: the caller decodes with serde_json
/// instead, whose message is the one that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Decodes `T` from `input`, or says why this reader left it to serde_json.
pub fn from_slice<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    from_slice_seed(input, PhantomData)
}

/// [`from_slice`] with a seed.
pub fn from_slice_seed<'de, S: DeserializeSeed<'de>>(
    input: &'de [u8],
    seed: S,
) -> Result<S::Value> {
    // simdutf8's check is SIMD and picked at run time; std's gives the message on failure.
    let text = match simdutf8::basic::from_utf8(input) {
        Ok(text) => text,
        Err(_) => std::str::from_utf8(input).map_err(|e| Error(format!("not UTF-8: {e}")))?,
    };
    from_str_seed(text, seed)
}

/// [`from_slice`] for text already known to be UTF-8 (a part of a checked body).
pub fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T> {
    from_str_seed(text, PhantomData)
}

fn from_str_seed<'de, S: DeserializeSeed<'de>>(text: &'de str, seed: S) -> Result<S::Value> {
    let mut reader = Reader::new(text);
    let value = seed.deserialize(&mut reader)?;
    reader.skip_ws();
    if reader.pos != text.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(value)
}

/// Reads the value that follows (after whitespace) without decoding it, and returns its text.
/// Structure-checked only, as the module documentation says.
pub fn skip_value(input: &str) -> Result<&str> {
    let mut reader = Reader::new(input);
    reader.skip_ws();
    let start = reader.pos;
    reader.skip()?;
    Ok(&input[start..reader.pos])
}

/// A JSON value kept as the text it was read from, as serde_json's `RawValue` keeps it. Both
/// readers produce it: this one by skipping, serde_json through `RawValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    pub fn get(&self) -> &'a str {
        self.0
    }
}

/// The newtype name by which [`RawJson`] asks this reader for a value's text.
const RAW_JSON: &str = "$rollout_guard::json::RawJson";

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawJson<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            // This reader: the value's text.
            fn visit_borrowed_str<E: de::Error>(
                self,
                text: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(RawJson(text))
            }
            // serde_json (and any other deserializer): through its own raw value.
            fn visit_newtype_struct<D2: Deserializer<'de>>(
                self,
                d: D2,
            ) -> std::result::Result<Self::Value, D2::Error> {
                <&'de serde_json::value::RawValue>::deserialize(d).map(|raw| RawJson(raw.get()))
            }
        }
        d.deserialize_newtype_struct(RAW_JSON, V(PhantomData))
    }
}

/// The reader: a position in a UTF-8 body and the nesting of the values being read.
pub struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
    depth: usize,
}

impl<'de> Reader<'de> {
    /// At the start of `text`, outside any value.
    fn new(text: &'de str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn error(&self, what: &str) -> Error {
        Error(format!("{what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// After whitespace, the next byte must be `c`; consumes it.
    fn expect(&mut self, c: u8, what: &str) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        Ok(())
    }

    /// The string at `pos` (its opening quote): borrowed when it has no escapes, else decoded
    /// by serde_json.
    fn string(&mut self) -> Result<Cow<'de, str>> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let start = self.pos;
        let from = start + 1;
        let stop =
            find_special(self.bytes, from).ok_or_else(|| self.error("unterminated string"))?;
        match self.bytes[stop] {
            b'"' => {
                self.pos = stop + 1;
                Ok(Cow::Borrowed(&self.text[from..stop]))
            }
            b'\\' => {
                self.skip_string()?;
                let quoted = &self.text[start..self.pos];
                serde_json::from_str::<String>(quoted)
                    .map(Cow::Owned)
                    .map_err(|e| Error(format!("string at byte {start}: {e}")))
            }
            _ => {
                self.pos = stop;
                Err(self.error("control character in string"))
            }
        }
    }

    /// Reads an integer the way serde_json does, or gives up on anything else.
    fn integer<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error("invalid number")),
        }
        if let Some(b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            // Fractions and exponents are serde_json's to round; a digit here is a leading
            // zero, which it refuses.
            return Err(self.error("number left to serde_json"));
        }
        let digits = &self.text[start..self.pos];
        if negative {
            // serde_json reads `-0` as a float, and integers below i64::MIN as floats.
            match digits.parse::<i64>() {
                Ok(n) if n != 0 => visitor.visit_i64(n),
                _ => Err(self.error("number left to serde_json")),
            }
        } else {
            match digits.parse::<u64>() {
                Ok(n) => visitor.visit_u64(n),
                Err(_) => Err(self.error("number left to serde_json")),
            }
        }
    }

    /// Skips the value that starts at `pos` (after whitespace).
    fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'{' | b'[') => self.skip_container(),
            Some(b'"') => self.skip_string(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn skip_number(&mut self) -> Result<()> {
        let digits = |r: &mut Self| -> Result<()> {
            if !r.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(r.error("invalid number"));
            }
            while r.peek().is_some_and(|c| c.is_ascii_digit()) {
                r.pos += 1;
            }
            Ok(())
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            digits(self)?;
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            digits(self)?;
        }
        Ok(())
    }

    /// Skips the string at `pos` (its opening quote).
    fn skip_string(&mut self) -> Result<()> {
        // Most skipped strings are short and have no escape: their end is the first special
        // byte, found without the block machinery.
        if let Some(stop) = find_special(self.bytes, self.pos + 1)
            && self.bytes[stop] == b'"'
        {
            self.pos = stop + 1;
            return Ok(());
        }
        #[cfg(target_arch = "x86_64")]
        match isa() {
            // SAFETY (both): the CPU has the features the variant is compiled with (`isa`).
            #[allow(unsafe_code)]
            Isa::Avx512 => return unsafe { self.skip_long_string_avx512() },
            #[allow(unsafe_code)]
            Isa::Avx2 => return unsafe { self.skip_long_string_avx2() },
            Isa::Popcnt | Isa::Baseline => {}
        }
        self.skip_long_string::<SSE2>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,pclmulqdq")]
    fn skip_long_string_avx2(&mut self) -> Result<()> {
        self.skip_long_string::<AVX2>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2,popcnt,pclmulqdq")]
    fn skip_long_string_avx512(&mut self) -> Result<()> {
        self.skip_long_string::<AVX512>()
    }

    /// The block-wise part of [`Reader::skip_string`], for strings with escapes (such as
    /// kubectl's last-applied copy of the object).
    #[inline(always)]
    fn skip_long_string<const ISA: u8>(&mut self) -> Result<()> {
        let mut scan = Scan::new(self.pos + 1, true);
        loop {
            let block = scan.next_block::<ISA>(self.bytes)?;
            if block.quotes != 0 {
                let end = block.quotes.trailing_zeros();
                if block.ctl & below(end) != 0 {
                    return Err(self.error("control character in string"));
                }
                self.pos = scan.at + end as usize + 1;
                return Ok(());
            }
            if block.ctl != 0 {
                return Err(self.error("control character in string"));
            }
            scan.at += BLOCK;
        }
    }

    /// Skips the object or array at `pos` (its opening bracket), counting brackets outside
    /// strings until the count returns to zero.
    fn skip_container(&mut self) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        match isa() {
            // SAFETY (all three): the CPU has the features the variant is compiled with (`isa`).
            #[allow(unsafe_code)]
            Isa::Avx512 => return unsafe { self.skip_container_avx512() },
            #[allow(unsafe_code)]
            Isa::Avx2 => return unsafe { self.skip_container_avx2() },
            #[allow(unsafe_code)]
            Isa::Popcnt => return unsafe { self.skip_container_popcnt() },
            Isa::Baseline => {}
        }
        self.skip_container_in::<SSE2>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,pclmulqdq")]
    fn skip_container_avx2(&mut self) -> Result<()> {
        self.skip_container_in::<AVX2>()
    }

    /// One 64-byte load and five compares straight into bit masks per block.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2,popcnt,pclmulqdq")]
    fn skip_container_avx512(&mut self) -> Result<()> {
        self.skip_container_in::<AVX512>()
    }

    /// The same code compiled with the POPCNT instruction, which the x86-64 baseline lacks
    /// (without it every count is a dozen instructions, twice per block).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    fn skip_container_popcnt(&mut self) -> Result<()> {
        self.skip_container_in::<SSE2>()
    }

    #[inline(always)]
    fn skip_container_in<const ISA: u8>(&mut self) -> Result<()> {
        let mut scan = Scan::new(self.pos, false);
        let mut open: usize = 0;
        let room = MAX_DEPTH - self.depth;
        loop {
            // Most blocks are whole, hold no backslash and cannot end the container: they only
            // move the count and the string state, without the tail mask, the escape pass and
            // the per-block error branch of `next_block`. Any other block is classified again
            // below, from the same state.
            if let Some(whole) = self
                .bytes
                .get(scan.at..)
                .and_then(|r| r.first_chunk::<BLOCK>())
                && !scan.escaped_first
            {
                let m = classify_any::<ISA>(whole);
                if m.backslashes == 0 {
                    let inside = prefix_xor_any::<ISA>(m.quotes) ^ scan.in_string;
                    let opens = m.opens & !inside;
                    let closes = m.closes & !inside;
                    let empty = opens & (closes >> 1);
                    let o = (opens & !empty).count_ones() as usize;
                    let c = (closes & !(empty << 1)).count_ones() as usize;
                    if m.ctl & inside == 0 && open > c && open + o < room {
                        scan.in_string = ((inside as i64) >> 63) as u64;
                        open = open + o - c;
                        scan.at += BLOCK;
                        continue;
                    }
                }
            }
            let block = scan.next_block::<ISA>(self.bytes)?;
            let inside = block.inside;
            if (block.ctl & inside) | (block.backslashes & !inside) != 0 {
                return Err(if block.ctl & inside != 0 {
                    self.error("control character in string")
                } else {
                    self.error("backslash outside a string")
                });
            }
            let opens = block.opens & !inside;
            let closes = block.closes & !inside;
            // An empty `{}` or `[]` never takes the count below where it started.
            let empty = opens & (closes >> 1);
            let (o, c) = (opens & !empty, closes & !(empty << 1));
            if open > c.count_ones() as usize && (open + o.count_ones() as usize) < room {
                // Cannot end in this block, nor nest too deep in it.
                open = open + o.count_ones() as usize - c.count_ones() as usize;
            } else {
                let mut marks = opens | closes;
                while marks != 0 {
                    let bit = marks.trailing_zeros();
                    // +1 for an opening bracket, -1 for a closing one.
                    open = open + 2 * (opens >> bit & 1) as usize - 1;
                    if open == 0 {
                        self.pos = scan.at + bit as usize + 1;
                        return Ok(());
                    }
                    if open > room {
                        self.pos = scan.at + bit as usize;
                        return Err(self.error("nested too deep"));
                    }
                    marks &= marks - 1;
                }
            }
            scan.at += BLOCK;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Block scanning

const BLOCK: usize = 64;

/// Bits below `n` (`n` < 64).
fn below(n: u32) -> u64 {
    (1u64 << n) - 1
}

/// What one 64-byte block holds, one bit per byte.
struct Block {
    /// Unescaped quotes.
    quotes: u64,
    /// Bytes inside a string (an opening quote counts as inside, a closing one does not).
    inside: u64,
    backslashes: u64,
    opens: u64,
    closes: u64,
    /// Bytes below 0x20.
    ctl: u64,
}

/// The state carried from one block to the next.
struct Scan {
    /// Where the current block starts.
    at: usize,
    /// All ones when the block starts inside a string.
    in_string: u64,
    /// The block's first byte is escaped by a backslash at the end of the previous one.
    escaped_first: bool,
}

impl Scan {
    fn new(at: usize, in_string: bool) -> Self {
        Self {
            at,
            in_string: if in_string { u64::MAX } else { 0 },
            escaped_first: false,
        }
    }

    /// Classifies the block at `at` and advances the string and escape state past it. Escapes
    /// are validated here, so a skipped string holds only what serde_json would accept.
    #[inline(always)]
    fn next_block<const ISA: u8>(&mut self, bytes: &[u8]) -> Result<Block> {
        let rest = bytes.get(self.at..).unwrap_or_default();
        let (m, valid) = match rest.first_chunk::<BLOCK>() {
            Some(full) => (classify_any::<ISA>(full), u64::MAX),
            None if rest.is_empty() => {
                return Err(Error(format!("unexpected end at byte {}", bytes.len())));
            }
            None => {
                let mut chunk = [0u8; BLOCK];
                chunk[..rest.len()].copy_from_slice(rest);
                (classify_any::<ISA>(&chunk), below(rest.len() as u32))
            }
        };
        let backslashes = m.backslashes & valid;
        let mut escaped = 0;
        if backslashes != 0 || self.escaped_first {
            escaped = self.escapes(backslashes);
            // `\"` and `\\` are valid as they stand; look at the others one by one.
            let others = escaped & !(m.quotes | backslashes);
            if others != 0 {
                check_escapes(bytes, self.at, others)?;
            }
        }
        let quotes = m.quotes & valid & !escaped;
        let inside = prefix_xor_any::<ISA>(quotes) ^ self.in_string;
        self.in_string = ((inside as i64) >> 63) as u64;
        Ok(Block {
            quotes,
            inside,
            backslashes,
            opens: m.opens & valid,
            closes: m.closes & valid,
            ctl: m.ctl & valid,
        })
    }

    /// The bytes escaped by a backslash: the byte after each run of backslashes of odd length
    /// (in `\\\"`, the quote is not escaped; in `\\"` it is), without a branch per run.
    #[inline(always)]
    fn escapes(&mut self, backslashes: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let carried = u64::from(self.escaped_first);
        // A backslash escaped by the previous block's last one is a plain character.
        let b = backslashes & !carried;
        let starts = b & !(b << 1);
        // Adding a run's first bit carries through the run to the byte after it, which is
        // escaped when the run is odd: when its position and the start's differ in parity.
        let from_even = b.wrapping_add(starts & EVEN);
        let (from_odd, odd_run_continues) = b.overflowing_add(starts & !EVEN);
        self.escaped_first = odd_run_continues;
        (from_even & !b & !EVEN) | (from_odd & !b & EVEN) | carried
    }
}

/// Each escaped byte (the bits of `escaped`, in the block at `at`) must make an escape JSON
/// allows.
fn check_escapes(bytes: &[u8], at: usize, mut escaped: u64) -> Result<()> {
    while escaped != 0 {
        let i = at + escaped.trailing_zeros() as usize;
        // One table lookup and a branch that is almost never taken: `\u` and errors.
        let c = bytes.get(i).copied().unwrap_or(0);
        let unicode = || {
            c == b'u'
                && bytes
                    .get(i + 1..i + 5)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
        };
        if !SIMPLE_ESCAPE[usize::from(c)] && !unicode() {
            return Err(Error(format!("invalid escape at byte {}", i - 1)));
        }
        escaped &= escaped - 1;
    }
    Ok(())
}

/// The bytes that may follow a backslash, `u` (and its four hex digits) aside.
const SIMPLE_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut k = 0;
    let simple = b"\"\\/bfnrt";
    while k < simple.len() {
        table[simple[k] as usize] = true;
        k += 1;
    }
    table
};

/// The instruction sets the block scan is compiled for, as the `ISA` parameter of the scan
/// functions: one compiled copy each, picked at run time by [`isa`].
const SSE2: u8 = 0;
/// AVX2 for the byte classes, POPCNT for the bracket counts, PCLMULQDQ for the string mask.
const AVX2: u8 = 1;
/// [`AVX2`] plus AVX-512 F and BW: one 64-byte load and compares straight into bit masks.
const AVX512: u8 = 2;

/// What this CPU runs, best first.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    /// SSE2 (the x86-64 baseline) with POPCNT.
    Popcnt,
    Baseline,
}

#[cfg(target_arch = "x86_64")]
fn isa() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let avx2 = has!("avx2") && has!("popcnt") && has!("pclmulqdq");
        if avx2 && has!("avx512f") && has!("avx512bw") {
            Isa::Avx512
        } else if avx2 {
            Isa::Avx2
        } else if has!("popcnt") {
            Isa::Popcnt
        } else {
            Isa::Baseline
        }
    })
}

#[inline(always)]
#[allow(unsafe_code)]
fn prefix_xor_any<const ISA: u8>(x: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if ISA >= AVX2 {
        // SAFETY: ISA is AVX2 or AVX512 only in the variants compiled with PCLMULQDQ, which
        // run only when `isa` found it.
        return unsafe { prefix_xor_clmul(x) };
    }
    prefix_xor(x)
}

/// [`prefix_xor`] in one carry-less multiplication by all ones: bit `i` of the product is the
/// xor of the bits `0..=i`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, -1), 0);
    _mm_cvtsi128_si64(product) as u64
}

/// Bit `i` of the result is the parity of the bits `0..=i` of `x`.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The byte classes of one block.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    /// `{` and `[`.
    opens: u64,
    /// `}` and `]`.
    closes: u64,
    /// Bytes below 0x20.
    ctl: u64,
}

#[inline(always)]
#[allow(unsafe_code)]
fn classify_any<const ISA: u8>(block: &[u8; BLOCK]) -> Masks {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): ISA names the features of the variant it is instantiated in (the
        // `skip_*_avx2` and `skip_*_avx512` functions), which run only when `isa` found them.
        if ISA == AVX512 {
            return unsafe { classify_avx512(block) };
        }
        if ISA == AVX2 {
            return unsafe { classify_avx2(block) };
        }
    }
    classify(block)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn classify_avx512(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmple_epu8_mask, _mm512_loadu_si512,
        _mm512_or_si512, _mm512_set1_epi8,
    };
    // SAFETY: reads the 64 bytes of the array.
    let x = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    let is = |c: u8| _mm512_set1_epi8(c as i8);
    // `{` and `[` (and `}` and `]`) differ only in bit 0x20.
    let folded = _mm512_or_si512(x, is(0x20));
    Masks {
        quotes: _mm512_cmpeq_epi8_mask(x, is(b'"')),
        backslashes: _mm512_cmpeq_epi8_mask(x, is(b'\\')),
        opens: _mm512_cmpeq_epi8_mask(folded, is(b'{')),
        closes: _mm512_cmpeq_epi8_mask(folded, is(b'}')),
        ctl: _mm512_cmple_epu8_mask(x, is(0x1f)),
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
#[inline]
fn classify_avx2(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let case = _mm256_set1_epi8(0x20);
    let open = _mm256_set1_epi8(b'{' as i8);
    let close = _mm256_set1_epi8(b'}' as i8);
    let max_ctl = _mm256_set1_epi8(0x1f);
    let mask = |v: __m256i| u64::from(_mm256_movemask_epi8(v) as u32);
    let mut m = Masks::default();
    for k in 0..BLOCK / 32 {
        // SAFETY: reads 32 bytes at offset 0 or 32 of a 64-byte array.
        let x = unsafe { _mm256_loadu_si256(block.as_ptr().add(k * 32).cast::<__m256i>()) };
        let folded = _mm256_or_si256(x, case);
        let shift = k * 32;
        m.quotes |= mask(_mm256_cmpeq_epi8(x, quote)) << shift;
        m.backslashes |= mask(_mm256_cmpeq_epi8(x, backslash)) << shift;
        m.opens |= mask(_mm256_cmpeq_epi8(folded, open)) << shift;
        m.closes |= mask(_mm256_cmpeq_epi8(folded, close)) << shift;
        m.ctl |= mask(_mm256_cmpeq_epi8(_mm256_max_epu8(x, max_ctl), max_ctl)) << shift;
    }
    m
}

/// Portable classification, and the reference the SIMD one is tested against.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn classify_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &c) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match c {
            b'"' => m.quotes |= bit,
            b'\\' => m.backslashes |= bit,
            b'{' | b'[' => m.opens |= bit,
            b'}' | b']' => m.closes |= bit,
            0..=0x1f => m.ctl |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(block: &[u8; BLOCK]) -> Masks {
    classify_scalar(block)
}

/// SSE2 (part of x86-64 itself, so always present): 16 bytes per comparison.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
fn classify(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86_64 target (the intrinsics need nothing else), and
    // each load reads 16 bytes at offset 0, 16, 32 or 48 of a 64-byte array.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        // `{` and `[` (and `}` and `]`) differ only in bit 0x20.
        let case = _mm_set1_epi8(0x20);
        let open = _mm_set1_epi8(b'{' as i8);
        let close = _mm_set1_epi8(b'}' as i8);
        let max_ctl = _mm_set1_epi8(0x1f);
        let mask = |v: __m128i| u64::from(_mm_movemask_epi8(v) as u16);
        let mut m = Masks::default();
        for k in 0..BLOCK / 16 {
            let x = _mm_loadu_si128(block.as_ptr().add(k * 16).cast::<__m128i>());
            let folded = _mm_or_si128(x, case);
            let shift = k * 16;
            m.quotes |= mask(_mm_cmpeq_epi8(x, quote)) << shift;
            m.backslashes |= mask(_mm_cmpeq_epi8(x, backslash)) << shift;
            m.opens |= mask(_mm_cmpeq_epi8(folded, open)) << shift;
            m.closes |= mask(_mm_cmpeq_epi8(folded, close)) << shift;
            m.ctl |= mask(_mm_cmpeq_epi8(_mm_max_epu8(x, max_ctl), max_ctl)) << shift;
        }
        m
    }
}

/// Appends `text` as a JSON string, byte for byte as serde_json writes it. A text with nothing
/// to escape (found the way the reader finds a string's end) is copied whole; any other is
/// escaped by serde_json.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    if find_special(text.as_bytes(), 0).is_none() {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail, and a &str always serializes.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// The first `"`, `\` or control character at or after `from`.
fn find_special(bytes: &[u8], from: usize) -> Option<usize> {
    let (chunks, tail) = bytes.get(from..)?.as_chunks::<16>();
    let mut at = from;
    for chunk in chunks {
        let special = special16(chunk);
        if special != 0 {
            return Some(at + special.trailing_zeros() as usize);
        }
        at += 16;
    }
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

/// Bit `i` set when byte `i` is `"`, `\` or a control character.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn special16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86_64 target; the load reads the 16-byte array.
    unsafe {
        let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let max_ctl = _mm_set1_epi8(0x1f);
        let hits = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)),
            ),
            _mm_cmpeq_epi8(_mm_max_epu8(x, max_ctl), max_ctl),
        );
        _mm_movemask_epi8(hits) as u16 as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn special16(chunk: &[u8; 16]) -> u32 {
    chunk.iter().enumerate().fold(0, |m, (i, &c)| {
        m | (u32::from(c == b'"' || c == b'\\' || c < 0x20) << i)
    })
}

// ---------------------------------------------------------------------------------------------
// serde

/// Implements each listed `deserialize_*` as [`Reader::typed`] with the given first bytes.
macro_rules! typed {
    ($($starts:ident => $($method:ident)+;)+) => {
        $($(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.typed($starts, visitor)
            }
        )+)+
    };
}

impl<'de> Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_ws();
        match self.peek() {
            Some(b'n') => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'"') => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
                Cow::Owned(s) => visitor.visit_string(s),
            },
            Some(b'-' | b'0'..=b'9') => self.integer(visitor),
            Some(b'[') => {
                self.pos += 1;
                self.enter()?;
                let value = visitor.visit_seq(Elements {
                    reader: &mut *self,
                    first: true,
                })?;
                self.depth -= 1;
                self.expect(b']', "expected `]`")?;
                Ok(value)
            }
            Some(b'{') => {
                self.pos += 1;
                self.enter()?;
                let value = visitor.visit_map(Entries {
                    reader: &mut *self,
                    first: true,
                })?;
                self.depth -= 1;
                self.expect(b'}', "expected `}`")?;
                Ok(value)
            }
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_ws();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_ws();
        self.skip()?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW_JSON {
            self.skip_ws();
            let start = self.pos;
            self.skip()?;
            return visitor.visit_borrowed_str(&self.text[start..self.pos]);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(self.error("enums are left to serde_json"))
    }

    typed! {
        NUMBER => deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
            deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32 deserialize_f64;
        STRING => deserialize_char deserialize_str deserialize_string deserialize_identifier;
        BOOL => deserialize_bool;
        NULL => deserialize_unit;
        ARRAY => deserialize_seq;
        OBJECT => deserialize_map;
        NOTHING => deserialize_i128 deserialize_u128 deserialize_bytes deserialize_byte_buf;
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.typed(NULL, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.typed(ARRAY, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.typed(ARRAY, visitor)
    }

    /// serde_json reads a struct from an object or from an array.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.typed(CONTAINER, visitor)
    }
}

// What each typed request accepts, by the value's first byte. serde_json answers anything else
// with an "invalid type" error; this reader leaves it to serde_json, so that no visitor can see
// a value here that serde_json would not have given it.
const NUMBER: &[u8] = b"-0123456789";
const STRING: &[u8] = b"\"";
const BOOL: &[u8] = b"tf";
const NULL: &[u8] = b"n";
const ARRAY: &[u8] = b"[";
const OBJECT: &[u8] = b"{";
const CONTAINER: &[u8] = b"{[";
/// 128-bit integers and bytes: serde_json has its own paths for those.
const NOTHING: &[u8] = b"";

impl<'de> Reader<'de> {
    /// `deserialize_any`, for a value that starts with one of `starts`.
    fn typed<V: Visitor<'de>>(&mut self, starts: &[u8], visitor: V) -> Result<V::Value> {
        self.skip_ws();
        match self.peek() {
            Some(c) if starts.contains(&c) => self.deserialize_any(visitor),
            _ => Err(self.error("value type left to serde_json")),
        }
    }
}

/// The elements of an array being read.
struct Elements<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.reader.skip_ws();
        if self.reader.peek() == Some(b']') {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            self.reader.expect(b',', "expected `,` or `]`")?;
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// The entries of an object being read.
struct Entries<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.reader.skip_ws();
        if self.reader.peek() == Some(b'}') {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            self.reader.expect(b',', "expected `,` or `}`")?;
            self.reader.skip_ws();
        }
        if self.reader.peek() != Some(b'"') {
            return Err(self.reader.error("expected a key"));
        }
        let key = seed.deserialize(Key(&mut *self.reader))?;
        self.reader.expect(b':', "expected `:`")?;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }
}

/// An object key: always a string.
struct Key<'a, 'de>(&'a mut Reader<'de>);

impl<'de> Deserializer<'de> for Key<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0.string()? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.0.skip_string()?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value> {
        Err(self.0.error("newtype keys are left to serde_json"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(self.0.error("optional keys are left to serde_json"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(self.0.error("enum keys are left to serde_json"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::{Value, json};

    /// An object whose `skip` member is ignored and whose `x` member is read.
    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        x: u32,
    }

    #[derive(Deserialize, Debug)]
    struct Raw<'a> {
        #[serde(borrow)]
        skip: RawJson<'a>,
    }

    fn probe(skipped: &str) -> Result<Probe> {
        from_slice(format!(r#"{{"skip": {skipped}, "x": 7}}"#).as_bytes())
    }

    #[test]
    fn from_str_reads_like_from_slice() {
        let text = r#"{"skip": [1, {"a": "\u00e9"}], "x": 7} "#;
        assert_eq!(from_str::<Probe>(text).unwrap(), Probe { x: 7 });
        assert_eq!(
            from_str::<Raw>(text).unwrap().skip.get(),
            from_slice::<Raw>(text.as_bytes()).unwrap().skip.get()
        );
        assert!(from_str::<Probe>(r#"{"skip": 1, "x": 7} x"#).is_err());
    }

    #[test]
    fn prefix_xor_is_the_running_parity_in_both_forms() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            let expected = (0..64).fold(0u64, |acc, i| {
                let parity = (x & (u64::MAX >> (63 - i))).count_ones() as u64 & 1;
                acc | parity << i
            });
            assert_eq!(prefix_xor(x), expected, "{x:#x}");
            #[cfg(target_arch = "x86_64")]
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has PCLMULQDQ, checked just above.
                let clmul = unsafe { prefix_xor_clmul(x) };
                assert_eq!(clmul, expected, "{x:#x}");
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }

    #[test]
    fn simd_and_scalar_classification_agree_on_every_byte() {
        for base in (0..=255u8).step_by(64) {
            let mut block = [0u8; BLOCK];
            for (i, b) in block.iter_mut().enumerate() {
                *b = base.wrapping_add(i as u8);
            }
            assert_eq!(classify(&block), classify_scalar(&block));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX2, checked just above.
                let wide = unsafe { classify_avx2(&block) };
                assert_eq!(wide, classify_scalar(&block));
            }
            #[cfg(target_arch = "x86_64")]
            if isa() == Isa::Avx512 {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX-512 F and BW, checked just above.
                let wide = unsafe { classify_avx512(&block) };
                assert_eq!(wide, classify_scalar(&block));
            }
        }
    }

    #[test]
    fn writes_strings_as_serde_json_does() {
        let mut texts: Vec<String> = (0u8..0x80).map(|c| format!("ab{}cd", c as char)).collect();
        texts.extend(
            [
                "",
                "plain text longer than sixteen bytes",
                "é ü \u{7f} \u{85}",
            ]
            .map(String::from),
        );
        texts.push(format!("{}\"", "x".repeat(40)));
        for text in &texts {
            let mut out = b"[".to_vec();
            push_str(&mut out, text);
            assert_eq!(
                out[1..],
                *serde_json::to_string(text).unwrap().as_bytes(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn finds_the_first_special_byte_anywhere() {
        for len in 0..40 {
            for (at, special) in (0..len).flat_map(|at| [b'"', b'\\', 0, 0x1f].map(|c| (at, c))) {
                let mut bytes = vec![b'a'; len];
                bytes[at] = special;
                if at + 1 < len {
                    bytes[at + 1] = b'"';
                }
                assert_eq!(find_special(&bytes, 0), Some(at), "{len} {at} {special}");
            }
            assert_eq!(find_special(&vec![0x7f; len], 0), None);
            assert_eq!(find_special(&vec![0xc3; len], 0), None);
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a":[1,-2,true,false,null,"s","\u00e9\n\"q\""],"b":{},"c":[],"d":{"e":{"f":0}}}"#,
            r#"  [ 1 , 2 ]  "#,
            r#""caf\u00e9""#,
            "18446744073709551615",
            "-9223372036854775808",
            r#"{"k\"ey":"v"}"#,
        ] {
            let lean: Value = from_slice(text.as_bytes()).unwrap();
            let reference: Value = serde_json::from_str(text).unwrap();
            assert_eq!(lean, reference, "{text}");
        }
    }

    #[test]
    fn leaves_floats_big_integers_and_minus_zero_to_serde_json() {
        for text in [
            "1.5",
            "1e3",
            "-0",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            assert!(from_slice::<Value>(text.as_bytes()).is_err(), "{text}");
            assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses_in_read_values() {
        for text in [
            "",
            "{",
            "[1,]",
            "[,1]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "01",
            "-",
            "tru",
            "nul",
            r#""unterminated"#,
            r#""bad \q escape""#,
            "\"raw \u{1} control\"",
            "[1] x",
            "{} {}",
            r#"{"a":1 "b":2}"#,
            "[1 2]",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(from_slice::<Value>(text.as_bytes()).is_err(), "{text}");
        }
        assert!(from_slice::<Value>(b"\"\xff\"").is_err());
    }

    #[test]
    fn typed_requests_accept_only_what_serde_json_accepts() {
        // A visitor that takes anything, asked for a string: serde_json refuses a number.
        struct Anything;
        impl<'de> Deserialize<'de> for Anything {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Anything;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("anything")
                    }
                    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Anything, E> {
                        Ok(Anything)
                    }
                    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Anything, E> {
                        Ok(Anything)
                    }
                }
                d.deserialize_str(V)
            }
        }
        assert!(serde_json::from_str::<Anything>("5").is_err());
        assert!(from_slice::<Anything>(b"5").is_err());
        assert!(from_slice::<Anything>(br#""5""#).is_ok());
    }

    #[test]
    fn skips_values_of_every_shape() {
        for skipped in [
            "1",
            "-0",
            "1.5e-3",
            "true",
            "null",
            r#""""#,
            r#""a\"b\\""#,
            r#"{"a":[{"b":"}"}]}"#,
            r#"["]", "[", "\\", "\\\""]"#,
            "[[[[[]]]]]",
            r#"{"\u005c":"\u0022"}"#,
        ] {
            assert_eq!(probe(skipped), Ok(Probe { x: 7 }), "{skipped}");
            let text = format!(r#"{{"skip": {skipped}}}"#);
            let raw: Raw = from_slice(text.as_bytes()).unwrap();
            assert_eq!(raw.skip.get(), skipped);
        }
    }

    #[test]
    fn skipping_checks_structure() {
        for skipped in [
            r#""unterminated"#,
            r#"{"a":"unterminated}"#,
            r#"["bad \q escape"]"#,
            r#"["bad \u12 escape"]"#,
            "[\"raw \u{1} control\"]",
            "\"raw \u{1} control\"",
            "[1, 2",
            r#"[1, \ 2]"#,
            "tru",
            "-",
            "1.",
            "1e",
        ] {
            assert!(probe(skipped).is_err(), "{skipped}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(probe(&deep).is_err());
        let shallow = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert_eq!(probe(&shallow), Ok(Probe { x: 7 }));
    }

    /// The documented limit: a skipped value's grammar between tokens is not checked.
    #[test]
    fn skipping_does_not_check_the_grammar_between_tokens() {
        assert_eq!(probe("[1 2]"), Ok(Probe { x: 7 }));
        assert_eq!(probe(r#"{"a" 1}"#), Ok(Probe { x: 7 }));
        assert!(serde_json::from_str::<Probe>(r#"{"skip": [1 2], "x": 7}"#).is_err());
    }

    /// Every run of escaped backslashes and quotes, at every offset across a block boundary.
    #[test]
    fn escapes_across_block_boundaries() {
        for run in 0..6 {
            for tail in ["\"", "", "x", "\\\""] {
                let content = format!("{}{tail}", "\\".repeat(run));
                let skipped = serde_json::to_string(&json!([content, {"k": content}])).unwrap();
                let quoted = serde_json::to_string(&content).unwrap();
                for pad in 0..70 {
                    let text = format!("{quoted}{}", " ".repeat(pad));
                    for end in string_skips(&text) {
                        assert_eq!(end, Ok(quoted.len()), "run {run}, pad {pad}");
                    }
                }
                for pad in 0..140 {
                    let body = format!(r#"{{"pad":"{}","skip":{skipped},"x":7}}"#, "p".repeat(pad));
                    let raw: Raw = from_slice(body.as_bytes()).unwrap();
                    assert_eq!(raw.skip.get(), skipped, "run {run}, pad {pad}");
                    assert_eq!(from_slice::<Probe>(body.as_bytes()), Ok(Probe { x: 7 }));
                }
            }
        }
    }

    /// Where the skip `f` ends in `text`, from its start.
    fn skip_end(text: &str, f: &dyn Fn(&mut Reader) -> Result<()>) -> Result<usize> {
        let mut r = Reader::new(text);
        f(&mut r).map(|()| r.pos)
    }

    /// Where each compiled variant of the container skip ends (or that it refuses), so the
    /// variants this CPU does not pick are tested too.
    fn container_skips(text: &str) -> Vec<Result<usize>> {
        let run = |f: &dyn Fn(&mut Reader) -> Result<()>| skip_end(text, f);
        let mut ends = vec![run(&|r| r.skip_container_in::<SSE2>())];
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unsafe_code)]
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: checked just above.
                ends.push(run(&|r| unsafe { r.skip_container_popcnt() }));
            }
            #[allow(unsafe_code)]
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                // SAFETY: checked just above.
                ends.push(run(&|r| unsafe { r.skip_container_avx2() }));
            }
            #[allow(unsafe_code)]
            if isa() == Isa::Avx512 {
                // SAFETY: checked just above.
                ends.push(run(&|r| unsafe { r.skip_container_avx512() }));
            }
        }
        ends
    }

    /// The same for strings (at their opening quote).
    fn string_skips(text: &str) -> Vec<Result<usize>> {
        let run = |f: &dyn Fn(&mut Reader) -> Result<()>| skip_end(text, f);
        let mut ends = vec![
            run(&|r| r.skip_string()),
            run(&|r| r.skip_long_string::<SSE2>()),
        ];
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        {
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                // SAFETY: checked just above.
                ends.push(run(&|r| unsafe { r.skip_long_string_avx2() }));
            }
            if isa() == Isa::Avx512 {
                // SAFETY: checked just above.
                ends.push(run(&|r| unsafe { r.skip_long_string_avx512() }));
            }
        }
        ends
    }

    #[test]
    fn every_skip_variant_agrees() {
        for text in [
            r#"{"a":[{"b":"}"}]} tail"#,
            r#"["]", "[", "\\", "\\\""]"#,
            r#"[1, "unterminated]"#,
            r#"[1, "bad \q"]"#,
            "[\"raw \u{1}\"]",
            "[1, \\ 2]",
            &format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1)),
            &format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1)),
        ] {
            let ends = container_skips(text);
            assert!(
                ends.windows(2)
                    .all(|w| w[0].is_ok() == w[1].is_ok()
                        && w[0].as_ref().ok() == w[1].as_ref().ok()),
                "{text}: {ends:?}"
            );
        }
    }

    /// The whole-block shortcut of `skip_container_in` hands every block it cannot settle
    /// alone to the full path: where the container ends, where it nests too deep, a control
    /// character in a string and a backslash outside one, each past the first blocks.
    #[test]
    fn whole_blocks_leave_the_ends_and_the_errors_to_the_full_path() {
        let filler = format!(r#"{{"a":[1,{{}},"{}"]}},"#, "s".repeat(40)).repeat(6);
        let ok = format!(r#"[{filler}{{"b":"}}"}}] tail"#);
        // A whole block that holds one closing bracket, at the depth it started at.
        let alone = format!(r#"["{}"]{}"#, "s".repeat(4 * BLOCK), " ".repeat(BLOCK));
        let deep = format!(
            "[{filler}{}{}]",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        let fits = format!(
            "[{filler}{}{}]",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        let ctl = format!("[{filler}\"raw \u{1}\",{filler}1]");
        let backslash = format!(r"[{filler}1, \\ 2]");
        let cases: [(&str, std::result::Result<usize, &str>); 6] = [
            (&ok, Ok(ok.len() - " tail".len())),
            (&alone, Ok(alone.len() - BLOCK)),
            (&deep, Err("nested too deep")),
            (&fits, Ok(fits.len())),
            (&ctl, Err("control character in string")),
            (&backslash, Err("backslash outside a string")),
        ];
        for (text, expected) in cases {
            assert!(text.len() > 3 * BLOCK, "{text}");
            for end in container_skips(text) {
                match (&end, expected) {
                    (Ok(at), Ok(want)) => assert_eq!(*at, want, "{text}"),
                    (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e}: {text}"),
                    _ => panic!("{text}: {end:?}, expected {expected:?}"),
                }
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[a-z\"\\\\/ ]{0,80}",
            any::<String>(),
            Just("\\".repeat(63)),
            Just("\u{1}\u{1f}\u{7f}é\u{10000}".to_owned()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\]{0,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the padding puts the value at, against 64-byte blocks: reading it gives
        /// serde_json's value, skipping it ends where serde_json's value ends.
        #[test]
        fn agrees_with_serde_json(value in json_value(), pad in 0usize..70, pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let body = format!(r#"{{"pad":"{}","skip": {text} ,"x":7}}"#, "p".repeat(pad));
            prop_assert_eq!(from_slice::<Value>(text.as_bytes()).unwrap(), value);
            let raw: Raw = from_slice(body.as_bytes()).unwrap();
            prop_assert_eq!(raw.skip.get(), text.as_str());
            prop_assert_eq!(from_slice::<Probe>(body.as_bytes()).unwrap(), Probe { x: 7 });
            prop_assert!(from_slice::<IgnoredAny>(body.as_bytes()).is_ok());
            if text.starts_with(['{', '[']) {
                for end in container_skips(&text) {
                    prop_assert_eq!(end, Ok(text.len()));
                }
            }
            if text.starts_with('"') {
                for end in string_skips(&text) {
                    prop_assert_eq!(end, Ok(text.len()));
                }
            }
        }

        /// Cut anywhere, a document is refused by both readers (or, where the cut leaves a
        /// whole value, accepted by both).
        #[test]
        fn truncation_is_refused(value in json_value(), cut in any::<prop::sample::Index>()) {
            let text = serde_json::to_string(&value).unwrap();
            let cut = cut.index(text.len() + 1);
            let Some(prefix) = text.get(..cut) else { return Ok(()) };
            let reference = serde_json::from_str::<Value>(prefix).is_ok();
            prop_assert_eq!(from_slice::<IgnoredAny>(prefix.as_bytes()).is_ok(), reference, "{}", prefix);
            if prefix.starts_with(['{', '[']) {
                for end in container_skips(prefix) {
                    prop_assert_eq!(end.is_ok(), reference, "{}", prefix);
                }
            }
            if prefix.starts_with('"') {
                for end in string_skips(prefix) {
                    prop_assert_eq!(end.is_ok(), reference, "{}", prefix);
                }
            }
        }
    }
}
