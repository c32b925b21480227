//! The decoder-only transformer all supported architectures share: weights read from a GGUF
//! onto candle's quantized matmul, a key/value cache allocated once per session and written in
//! place, and the forward pass. Each architecture file only says how its hyperparameters and
//! tensors are named and which [`Variant`] switches it turns on; everything numeric lives here,
//! so one fix reaches every model.
//!
//! The layout follows llama.cpp, the reference implementation of GGUF models: query head `h`
//! uses key/value head `h / (heads / kv_heads)`, RoPE angles are accumulated in f32 as ggml
//! does, and sliding-window layers mask keys `window` or more positions behind the query.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Content;
use candle_core::{CpuStorage, DType, Device, Storage, Tensor};

use crate::llm::kernels::{self, Linear};
use crate::llm::models::KvCacheType;

use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// ggml's "normal" mode: adjacent pairs (2i, 2i+1). Llama GGUFs have Q/K permuted for it.
    Adjacent,
    /// ggml's NEOX mode: pairs (i, i + d/2).
    HalfSplit,
}

/// The activation inside the gated feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    Silu,
    /// GELU, tanh approximation (Gemma).
    GeluTanh,
}

/// What sets one architecture's block apart from the plain Llama block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub rope: RopeStyle,
    pub activation: Activation,
    /// Q/K/V projections carry biases (Qwen2).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// RMSNorm of the attention and feed-forward outputs before the residual add (Gemma 3).
    pub post_norms: bool,
    /// Token embeddings are multiplied by sqrt(embedding length) (Gemma).
    pub scale_embeddings: bool,
    /// Sliding-window attention: the window and which layers use it (Gemma 3).
    pub sliding_window: Option<SlidingWindow>,
    /// Queries are scaled before the product with the keys (Gemma 3 in llama.cpp), not the
    /// product after it.
    pub pre_scale_queries: bool,
}

/// Local attention layers and their RoPE base.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlidingWindow {
    /// A key at `k` is visible from a query at `q` when `q - k < size`.
    pub size: usize,
    /// One flag per layer.
    pub layers: Vec<bool>,
    /// RoPE base of the local layers (their frequency scale is always 1).
    pub rope_base: f32,
}

/// Shapes and constants of one model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyper {
    pub layers: usize,
    pub embedding: usize,
    pub feed_forward: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    /// Multiplies positions (1 / linear scaling factor).
    pub rope_scale: f32,
    /// Multiplies queries before the dot product with keys.
    pub attention_scale: f32,
    /// The trained context length.
    pub context_length: usize,
}

impl Hyper {
    /// Reads the keys every architecture shares (`{arch}.*`) and checks they fit together.
    pub(crate) fn read_common(gguf: &GgufFile) -> Result<Hyper, LlmError> {
        let arch = gguf.architecture().to_string();
        let key = |s: &str| format!("{arch}.{s}");
        let usize_of = |k: &str, v: u64| -> Result<usize, LlmError> {
            usize::try_from(v).map_err(|_| gguf.problem(k, format!("{v} is too large")))
        };
        let required = |s: &str| -> Result<usize, LlmError> {
            let k = key(s);
            let v = gguf.require_u64(&k)?;
            if v == 0 {
                return Err(gguf.problem(&k, "is zero".into()));
            }
            usize_of(&k, v)
        };
        let layers = required("block_count")?;
        let embedding = required("embedding_length")?;
        let feed_forward = required("feed_forward_length")?;
        let heads = required("attention.head_count")?;
        let kv_heads = required("attention.head_count_kv")?;
        let context_length = required("context_length")?;
        let head_dim = match gguf.get_u64(&key("attention.key_length"))? {
            Some(v) => usize_of(&key("attention.key_length"), v)?,
            None => embedding / heads,
        };
        if let Some(v) = gguf.get_u64(&key("attention.value_length"))?
            && v as usize != head_dim
        {
            return Err(gguf.problem(
                &key("attention.value_length"),
                format!("is {v}, but key length is {head_dim}; different sizes are not supported"),
            ));
        }
        if heads % kv_heads != 0 || head_dim == 0 || head_dim % 2 != 0 {
            return Err(gguf.problem(
                &key("attention.head_count"),
                format!(
                    "is inconsistent: {heads} heads, {kv_heads} KV heads, head size {head_dim}"
                ),
            ));
        }
        if let Some(rot) = gguf.get_u64(&key("rope.dimension_count"))?
            && rot as usize != head_dim
        {
            return Err(gguf.problem(
                &key("rope.dimension_count"),
                format!("is {rot}, but partial rotary embeddings are not supported (head size {head_dim})"),
            ));
        }
        // Caps that keep a hostile header from asking for absurd allocations.
        const LIMIT: usize = 1 << 20;
        for (name, v) in [
            ("block_count", layers),
            ("embedding_length", embedding),
            ("feed_forward_length", feed_forward),
            ("attention.head_count", heads),
        ] {
            if v > LIMIT {
                return Err(gguf.problem(&key(name), format!("{v} is implausibly large")));
            }
        }
        let rms_eps = gguf
            .get_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                gguf.problem(
                    &key("attention.layer_norm_rms_epsilon"),
                    "is missing".into(),
                )
            })? as f32;
        let rope_base = gguf.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let rope_scale = rope_scale(gguf, &arch)?;
        let vocab = vocab_size(gguf)?;
        Ok(Hyper {
            layers,
            embedding,
            feed_forward,
            heads,
            kv_heads,
            head_dim,
            vocab,
            rms_eps,
            rope_base,
            rope_scale,
            attention_scale: 1.0 / (head_dim as f32).sqrt(),
            context_length,
        })
    }
}

/// `1 / factor` for linear RoPE scaling, 1 without scaling; other kinds are refused because
/// ignoring them would silently change the model.
fn rope_scale(gguf: &GgufFile, arch: &str) -> Result<f32, LlmError> {
    let kind_key = format!("{arch}.rope.scaling.type");
    let kind = gguf.get_str(&kind_key)?.unwrap_or("none");
    let factor = gguf
        .get_f64(&format!("{arch}.rope.scaling.factor"))?
        .or(gguf.get_f64(&format!("{arch}.rope.scale_linear"))?)
        .unwrap_or(0.0);
    match kind {
        "none" => Ok(1.0),
        "linear" if factor > 0.0 => Ok((1.0 / factor) as f32),
        "linear" => Ok(1.0),
        other => Err(gguf.problem(
            &kind_key,
            format!("is {other:?}; only linear RoPE scaling is supported"),
        )),
    }
}

fn vocab_size(gguf: &GgufFile) -> Result<usize, LlmError> {
    let tokens = gguf
        .get_str_array("tokenizer.ggml.tokens")?
        .map(|t| t.len())
        .unwrap_or(0);
    if tokens == 0 {
        return Err(gguf.problem("tokenizer.ggml.tokens", "is missing or empty".into()));
    }
    Ok(tokens)
}

/// Weights of one transformer block.
struct Block {
    attn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    wo: Linear,
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Option<Tensor>,
    /// Local attention window of this layer, if it is a sliding-window layer.
    window: Option<usize>,
    rope_base: f32,
    rope_scale: f32,
}

/// The loaded weights of one model; shared read-only by all sessions.
pub(crate) struct Decoder {
    hyper: Hyper,
    variant: Variant,
    embeddings: Arc<QTensor>,
    blocks: Vec<Block>,
    output_norm: Tensor,
    output: Linear,
    /// Per-frequency divisors from `rope_freqs.weight` (Llama 3 long-context RoPE).
    rope_factors: Option<Vec<f32>>,
    /// The context a session may hold (its cache is allocated to this size).
    context: usize,
    kv_cache: KvCacheType,
    device: Device,
}

impl Decoder {
    /// Checks every tensor's presence and shape against `hyper` before reading any, then reads
    /// them. `context` caps sessions below the trained length (None: the trained length).
    pub(crate) fn load(
        gguf: GgufFile,
        hyper: Hyper,
        variant: Variant,
        device: &Device,
        context: Option<usize>,
        kv_cache: KvCacheType,
    ) -> Result<Decoder, LlmError> {
        let path = gguf.path().to_path_buf();
        let plan = TensorPlan::new(&hyper, &variant);
        plan.check(&gguf)?;
        let file = File::open(&path).map_err(|source| LlmError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf.into_content();
        let mut loader = Loader {
            content: &content,
            reader: &mut reader,
            device,
            path: &path,
        };
        let embeddings = Arc::new(loader.qtensor("token_embd.weight")?);
        let output = if content.tensor_infos.contains_key("output.weight") {
            loader.matmul("output.weight")?
        } else {
            Linear::new(Arc::clone(&embeddings))
                .map_err(|e| loader.failed("token_embd.weight", e))?
        };
        let output_norm = loader.dense("output_norm.weight")?;
        let rope_factors = if content.tensor_infos.contains_key("rope_freqs.weight") {
            let t = loader.dense("rope_freqs.weight")?;
            Some(
                t.to_dtype(DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| loader.failed("rope_freqs.weight", e))?,
            )
        } else {
            None
        };
        let mut blocks = Vec::with_capacity(hyper.layers);
        for i in 0..hyper.layers {
            let name = |s: &str| format!("blk.{i}.{s}");
            let optional =
                |loader: &mut Loader, s: &str, on: bool| -> Result<Option<Tensor>, LlmError> {
                    if on {
                        loader.dense(&name(s)).map(Some)
                    } else {
                        Ok(None)
                    }
                };
            let window = variant
                .sliding_window
                .as_ref()
                .filter(|w| w.layers.get(i).copied().unwrap_or(false));
            blocks.push(Block {
                attn_norm: loader.dense(&name("attn_norm.weight"))?,
                wq: loader.matmul(&name("attn_q.weight"))?,
                wk: loader.matmul(&name("attn_k.weight"))?,
                wv: loader.matmul(&name("attn_v.weight"))?,
                bq: optional(&mut loader, "attn_q.bias", variant.qkv_bias)?,
                bk: optional(&mut loader, "attn_k.bias", variant.qkv_bias)?,
                bv: optional(&mut loader, "attn_v.bias", variant.qkv_bias)?,
                q_norm: optional(&mut loader, "attn_q_norm.weight", variant.qk_norm)?,
                k_norm: optional(&mut loader, "attn_k_norm.weight", variant.qk_norm)?,
                wo: loader.matmul(&name("attn_output.weight"))?,
                post_attn_norm: optional(
                    &mut loader,
                    "post_attention_norm.weight",
                    variant.post_norms,
                )?,
                ffn_norm: loader.dense(&name("ffn_norm.weight"))?,
                gate: loader.matmul(&name("ffn_gate.weight"))?,
                up: loader.matmul(&name("ffn_up.weight"))?,
                down: loader.matmul(&name("ffn_down.weight"))?,
                post_ffn_norm: optional(&mut loader, "post_ffw_norm.weight", variant.post_norms)?,
                window: window.map(|w| w.size),
                rope_base: window.map_or(hyper.rope_base, |w| w.rope_base),
                rope_scale: if window.is_some() {
                    1.0
                } else {
                    hyper.rope_scale
                },
            });
        }
        let context = context
            .unwrap_or(hyper.context_length)
            .clamp(1, hyper.context_length);
        Ok(Decoder {
            hyper,
            variant,
            embeddings,
            blocks,
            output_norm,
            output,
            rope_factors,
            context,
            kv_cache,
            device: device.clone(),
        })
    }

    /// The most tokens one session can hold.
    pub(crate) fn context(&self) -> usize {
        self.context
    }

    /// Bytes of one session's attention cache (keys and values, every layer).
    pub(crate) fn kv_cache_bytes(&self) -> usize {
        let h = &self.hyper;
        2 * h.layers
            * h.kv_heads
            * h.head_dim
            * self.context
            * self.kv_cache.dtype().size_in_bytes()
    }

    pub(crate) fn kv_cache_type(&self) -> KvCacheType {
        self.kv_cache
    }

    /// A fresh session cache of [`Decoder::context`] positions.
    pub(crate) fn new_cache(self: &Arc<Self>) -> Result<KvCache, LlmError> {
        KvCache::new(self)
    }

    /// Runs `tokens` at positions `cache.len()..` and returns the last position's logits.
    fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> candle_core::Result<Vec<f32>> {
        let hyper = &self.hyper;
        let seq = tokens.len();
        let position = cache.len;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embeddings.embedding(&ids)?;
        if self.variant.scale_embeddings {
            x = (x * (hyper.embedding as f64).sqrt())?;
        }
        // The RoPE angles depend only on the positions and a layer's base and scale: one table
        // per distinct pair (two at most: Gemma 3's local layers have their own base).
        let mut ropes: Vec<((f32, f32), RopeTable)> = Vec::new();
        for block in &self.blocks {
            let key = (block.rope_base, block.rope_scale);
            if !ropes.iter().any(|(k, _)| *k == key) {
                ropes.push((key, self.rope_tables(position, seq, key.0, key.1)));
            }
        }
        for (layer, block) in self.blocks.iter().enumerate() {
            let key = (block.rope_base, block.rope_scale);
            let rope = ropes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, table)| table)
                .ok_or_else(|| candle_core::Error::Msg("no RoPE table for a layer".into()))?;
            let h = kernels::rms_norm_ggml(&x, &block.attn_norm, hyper.rms_eps)?;
            let mut attn =
                self.attention(block, &mut cache.layers[layer], &h, rope, position, seq)?;
            if let Some(norm) = &block.post_attn_norm {
                attn = kernels::rms_norm_ggml(&attn, norm, hyper.rms_eps)?;
            }
            x = (x + attn)?;
            if layer + 1 == self.blocks.len() && seq > 1 {
                // Only the last position's logits are wanted: llama.cpp drops the other rows
                // here too, which saves the last feed-forward on them and takes that product
                // as a single row, rounded as ggml rounds single rows.
                x = x.narrow(0, seq - 1, 1)?;
            }
            let h = kernels::rms_norm_ggml(&x, &block.ffn_norm, hyper.rms_eps)?;
            let gate = block.gate.forward(&h)?;
            let up = block.up.forward(&h)?;
            let activated = match self.variant.activation {
                Activation::Silu => kernels::swiglu_ggml(&gate, &up)?,
                Activation::GeluTanh => (kernels::gelu_ggml(&gate)? * up)?,
            };
            let mut ffn = block.down.forward(&activated)?;
            if let Some(norm) = &block.post_ffn_norm {
                ffn = kernels::rms_norm_ggml(&ffn, norm, hyper.rms_eps)?;
            }
            x = (x + ffn)?;
        }
        cache.len += seq;
        let last = x.narrow(0, x.dim(0)? - 1, 1)?;
        let last = kernels::rms_norm_ggml(&last, &self.output_norm, hyper.rms_eps)?;
        let logits = self.output.forward(&last)?;
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }

    fn attention(
        &self,
        block: &Block,
        cache: &mut LayerCache,
        h: &Tensor,
        (cos, sin): &RopeTable,
        position: usize,
        seq: usize,
    ) -> candle_core::Result<Tensor> {
        let hyper = &self.hyper;
        let hd = hyper.head_dim;
        let project = |w: &Linear, b: &Option<Tensor>| -> candle_core::Result<Tensor> {
            let y = w.forward(h)?;
            match b {
                Some(b) => y.broadcast_add(b),
                None => Ok(y),
            }
        };
        let q = project(&block.wq, &block.bq)?.reshape((seq, hyper.heads, hd))?;
        let k = project(&block.wk, &block.bk)?.reshape((seq, hyper.kv_heads, hd))?;
        let v = project(&block.wv, &block.bv)?.reshape((seq, hyper.kv_heads, hd))?;
        let (q, k) = match (&block.q_norm, &block.k_norm) {
            (Some(qn), Some(kn)) => (
                kernels::rms_norm_ggml(&q, qn, hyper.rms_eps)?,
                kernels::rms_norm_ggml(&k, kn, hyper.rms_eps)?,
            ),
            _ => (q, k),
        };
        let half_split = self.variant.rope == RopeStyle::HalfSplit;
        // (seq, heads, head_dim) in, (heads, seq, head_dim) out.
        let rope = |t: Tensor| -> candle_core::Result<Tensor> {
            if self.device.is_cpu() {
                let t = kernels::rope_ggml(&t, cos, sin, half_split)?;
                return t.transpose(0, 1)?.contiguous();
            }
            let cos = Tensor::from_slice(cos, (seq, hd / 2), &self.device)?;
            let sin = Tensor::from_slice(sin, (seq, hd / 2), &self.device)?;
            let t = t.transpose(0, 1)?.contiguous()?.unsqueeze(0)?;
            let t = if half_split {
                candle_nn::rotary_emb::rope(&t, &cos, &sin)?
            } else {
                candle_nn::rotary_emb::rope_i(&t, &cos, &sin)?
            };
            t.squeeze(0)
        };
        let q = rope(q)?;
        let k = rope(k)?;
        let v = v.transpose(0, 1)?.contiguous()?;
        let stored = self.kv_cache.dtype();
        cache.k.slice_set(&k.to_dtype(stored)?, 1, position)?;
        cache.v.slice_set(&v.to_dtype(stored)?, 1, position)?;
        let scale = hyper.attention_scale as f64;
        let q = if self.variant.pre_scale_queries {
            (q * scale)?
        } else {
            q
        };

        let start = kernels::visible_keys(block.window, position).start;
        let out = if self.device.is_cpu() {
            self.attention_cpu(cache, &q, position, seq, start, block.window)?
        } else {
            self.attention_ops(cache, &q, position, seq, start, block.window)?
        };
        block.wo.forward(&out)
    }

    /// Attention by candle's ops, for devices other than the CPU; `(seq, heads * head_dim)`.
    fn attention_ops(
        &self,
        cache: &LayerCache,
        q: &Tensor,
        position: usize,
        seq: usize,
        start: usize,
        window: Option<usize>,
    ) -> candle_core::Result<Tensor> {
        let hyper = &self.hyper;
        let hd = hyper.head_dim;
        let scale = hyper.attention_scale as f64;
        let end = position + seq;
        let keys = cache
            .k
            .narrow(1, start, end - start)?
            .to_dtype(DType::F32)?;
        let values = cache
            .v
            .narrow(1, start, end - start)?
            .to_dtype(DType::F32)?;
        let group = hyper.heads / hyper.kv_heads;
        // Stack the queries that share a KV head so one batched matmul per KV head does all.
        let q = q.reshape((hyper.kv_heads, group * seq, hd))?;
        // Scaled after the product, as llama.cpp's attention does (unless the queries were).
        let scores = q.matmul(&keys.t()?)?;
        let scores = if self.variant.pre_scale_queries {
            scores
        } else {
            (scores * scale)?
        };
        let span = end - start;
        let needs_mask = seq > 1 || window.is_some_and(|w| span > w);
        let scores = if needs_mask {
            let mask = attention_mask(position, seq, start, span, window, &self.device)?;
            scores
                .reshape((hyper.kv_heads * group, seq, span))?
                .broadcast_add(&mask)?
                .reshape((hyper.kv_heads, group * seq, span))?
        } else {
            scores
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&values.contiguous()?)?;
        out.reshape((hyper.heads, seq, hd))?
            .transpose(0, 1)?
            .reshape((seq, hyper.heads * hd))
    }

    /// Attention by [`kernels::attention`] on the cache in place; `(seq, heads * head_dim)`.
    fn attention_cpu(
        &self,
        cache: &LayerCache,
        q: &Tensor,
        position: usize,
        seq: usize,
        start: usize,
        window: Option<usize>,
    ) -> candle_core::Result<Tensor> {
        let hyper = &self.hyper;
        let hd = hyper.head_dim;
        let queries = q.flatten_all()?.to_vec1::<f32>()?;
        let (k_storage, k_layout) = cache.k.storage_and_layout();
        let (v_storage, v_layout) = cache.v.storage_and_layout();
        if !k_layout.is_contiguous() || !v_layout.is_contiguous() {
            candle_core::bail!("the attention cache is not contiguous");
        }
        let (k_at, v_at) = (k_layout.start_offset(), v_layout.start_offset());
        let out = match (&*k_storage, &*v_storage) {
            (Storage::Cpu(CpuStorage::F32(keys)), Storage::Cpu(CpuStorage::F32(values))) => {
                kernels::attention::attend(&kernels::attention::Attention {
                    inputs: self.attention_inputs(
                        &queries,
                        &keys[k_at..],
                        &values[v_at..],
                        (seq, position, window),
                    ),
                    start,
                    scale: (!self.variant.pre_scale_queries).then_some(hyper.attention_scale),
                })
            }
            (Storage::Cpu(CpuStorage::F16(keys)), Storage::Cpu(CpuStorage::F16(values))) => {
                kernels::flash::attend(&kernels::flash::Attention {
                    inputs: self.attention_inputs(
                        &queries,
                        &keys[k_at..],
                        &values[v_at..],
                        (seq, position, window),
                    ),
                    // ggml multiplies each score by the scale, by 1 where the queries were.
                    scale: if self.variant.pre_scale_queries {
                        1.0
                    } else {
                        hyper.attention_scale
                    },
                    threads: candle_core::utils::get_num_threads(),
                })
            }
            _ => candle_core::bail!("the attention cache is neither f32 nor f16 on the CPU"),
        };
        Tensor::from_vec(out, (hyper.heads, seq, hd), &self.device)?
            .transpose(0, 1)?
            .reshape((seq, hyper.heads * hd))
    }

    /// The kernels' view of one layer: `queries` against cached `keys` and `values`.
    fn attention_inputs<'a, T>(
        &self,
        queries: &'a [f32],
        keys: &'a [T],
        values: &'a [T],
        (seq, position, window): (usize, usize, Option<usize>),
    ) -> kernels::AttentionInputs<'a, T> {
        kernels::AttentionInputs {
            queries,
            keys,
            values,
            kv_heads: self.hyper.kv_heads,
            group: self.hyper.heads / self.hyper.kv_heads,
            seq,
            head_dim: self.hyper.head_dim,
            capacity: self.context,
            position,
            window,
        }
    }

    /// cos/sin of the RoPE angles for positions `position..position + seq`, `(seq, head_dim / 2)`
    /// row-major; angles accumulate in f32 as ggml computes them.
    fn rope_tables(&self, position: usize, seq: usize, base: f32, scale: f32) -> RopeTable {
        let half = self.hyper.head_dim / 2;
        let theta_scale = base.powf(-2.0 / self.hyper.head_dim as f32);
        let mut cos = Vec::with_capacity(seq * half);
        let mut sin = Vec::with_capacity(seq * half);
        for p in position..position + seq {
            let mut theta = p as f32;
            for i in 0..half {
                let factor = self
                    .rope_factors
                    .as_ref()
                    .and_then(|f| f.get(i).copied())
                    .unwrap_or(1.0);
                let angle = theta / factor * scale;
                cos.push(angle.cos());
                sin.push(angle.sin());
                theta *= theta_scale;
            }
        }
        (cos, sin)
    }
}

/// cos and sin of the RoPE angles, `(seq, head_dim / 2)` each, row-major.
type RopeTable = (Vec<f32>, Vec<f32>);

/// Additive mask `(seq, span)`: 0 where key `start + j` is visible from query `position + i`,
/// minus infinity where it is in the future or outside the sliding window.
fn attention_mask(
    position: usize,
    seq: usize,
    start: usize,
    span: usize,
    window: Option<usize>,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut mask = Vec::with_capacity(seq * span);
    for i in 0..seq {
        let seen = kernels::visible_keys(window, position + i);
        for j in 0..span {
            let visible = seen.contains(&(start + j));
            mask.push(if visible { 0.0 } else { f32::NEG_INFINITY });
        }
    }
    Tensor::from_vec(mask, (seq, span), device)
}

/// One layer's keys and values, `(kv_heads, capacity, head_dim)` each.
struct LayerCache {
    k: Tensor,
    v: Tensor,
}

/// One session's attention cache: allocated once at the session's full capacity and written in
/// place, so feeding never copies what is already cached.
pub(crate) struct KvCache {
    decoder: Arc<Decoder>,
    layers: Vec<LayerCache>,
    len: usize,
}

impl KvCache {
    fn new(decoder: &Arc<Decoder>) -> Result<KvCache, LlmError> {
        let h = &decoder.hyper;
        let shape = (h.kv_heads, decoder.context, h.head_dim);
        let alloc = || -> candle_core::Result<Vec<LayerCache>> {
            (0..h.layers)
                .map(|_| {
                    Ok(LayerCache {
                        k: Tensor::zeros(shape, decoder.kv_cache.dtype(), &decoder.device)?,
                        v: Tensor::zeros(shape, decoder.kv_cache.dtype(), &decoder.device)?,
                    })
                })
                .collect()
        };
        let layers = alloc().map_err(|e| LlmError::model("allocating the attention cache", e))?;
        Ok(KvCache {
            decoder: Arc::clone(decoder),
            layers,
            len: 0,
        })
    }

    /// Positions filled.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets every position from `len` on; later feeds overwrite them.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Runs `tokens` after the cached positions and returns the last position's logits.
    pub(crate) fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>, LlmError> {
        let position = self.len;
        if tokens.is_empty() {
            return Err(LlmError::model(
                format!("forward at position {position}"),
                "no tokens",
            ));
        }
        if position + tokens.len() > self.decoder.context {
            return Err(LlmError::ContextOverflow {
                have: position,
                adding: tokens.len(),
                limit: self.decoder.context,
            });
        }
        let decoder = Arc::clone(&self.decoder);
        decoder
            .forward(self, tokens)
            .map_err(|e| LlmError::model(format!("forward at position {position}"), e))
    }

    /// An independent cache holding a copy of this one's filled positions.
    pub(crate) fn fork(&self) -> Result<KvCache, LlmError> {
        let mut copy = KvCache::new(&self.decoder)?;
        if self.len > 0 {
            let run = || -> candle_core::Result<()> {
                for (dst, src) in copy.layers.iter().zip(&self.layers) {
                    dst.k
                        .slice_set(&src.k.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                    dst.v
                        .slice_set(&src.v.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                }
                Ok(())
            };
            run().map_err(|e| LlmError::model("copying the attention cache", e))?;
        }
        copy.len = self.len;
        Ok(copy)
    }
}

/// Every tensor a model needs, with its expected shape (candle order: rows first).
struct TensorPlan {
    expected: Vec<(String, Vec<usize>)>,
}

impl TensorPlan {
    fn new(h: &Hyper, v: &Variant) -> TensorPlan {
        let q_width = h.heads * h.head_dim;
        let kv_width = h.kv_heads * h.head_dim;
        let mut expected = vec![
            ("token_embd.weight".to_string(), vec![h.vocab, h.embedding]),
            ("output_norm.weight".to_string(), vec![h.embedding]),
        ];
        for i in 0..h.layers {
            let mut add =
                |s: &str, shape: Vec<usize>| expected.push((format!("blk.{i}.{s}"), shape));
            add("attn_norm.weight", vec![h.embedding]);
            add("attn_q.weight", vec![q_width, h.embedding]);
            add("attn_k.weight", vec![kv_width, h.embedding]);
            add("attn_v.weight", vec![kv_width, h.embedding]);
            add("attn_output.weight", vec![h.embedding, q_width]);
            if v.qkv_bias {
                add("attn_q.bias", vec![q_width]);
                add("attn_k.bias", vec![kv_width]);
                add("attn_v.bias", vec![kv_width]);
            }
            if v.qk_norm {
                add("attn_q_norm.weight", vec![h.head_dim]);
                add("attn_k_norm.weight", vec![h.head_dim]);
            }
            if v.post_norms {
                add("post_attention_norm.weight", vec![h.embedding]);
                add("post_ffw_norm.weight", vec![h.embedding]);
            }
            add("ffn_norm.weight", vec![h.embedding]);
            add("ffn_gate.weight", vec![h.feed_forward, h.embedding]);
            add("ffn_up.weight", vec![h.feed_forward, h.embedding]);
            add("ffn_down.weight", vec![h.embedding, h.feed_forward]);
        }
        TensorPlan { expected }
    }

    fn check(&self, gguf: &GgufFile) -> Result<(), LlmError> {
        let mut expected = self.expected.clone();
        if gguf.has_tensor("output.weight") {
            expected.push((
                "output.weight".into(),
                expected[0].1.clone(), // same shape as the embeddings
            ));
        }
        if gguf.has_tensor("rope_freqs.weight") {
            let half = gguf
                .tensor_shape("rope_freqs.weight")
                .map(|s| s.iter().product::<usize>())
                .unwrap_or(0);
            if half == 0 {
                return Err(LlmError::InvalidGguf {
                    path: gguf.path().to_path_buf(),
                    reason: "tensor rope_freqs.weight is empty".into(),
                });
            }
        }
        for (name, shape) in &expected {
            match gguf.tensor_shape(name) {
                None => {
                    return Err(LlmError::InvalidGguf {
                        path: gguf.path().to_path_buf(),
                        reason: format!(
                            "tensor {name} is missing (architecture {})",
                            gguf.architecture()
                        ),
                    });
                }
                Some(found) if found != shape.as_slice() => {
                    return Err(LlmError::InvalidGguf {
                        path: gguf.path().to_path_buf(),
                        reason: format!(
                            "tensor {name} has shape {found:?}, but the metadata implies {shape:?}"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Reads named tensors, turning failures into errors that name the file and tensor.
struct Loader<'a> {
    content: &'a Content,
    reader: &'a mut BufReader<File>,
    device: &'a Device,
    path: &'a std::path::Path,
}

impl Loader<'_> {
    fn failed(&self, name: &str, e: impl std::fmt::Display) -> LlmError {
        LlmError::Model {
            stage: format!("loading tensor {name} from {}", self.path.display()),
            reason: e.to_string(),
        }
    }

    fn qtensor(&mut self, name: &str) -> Result<QTensor, LlmError> {
        self.content
            .tensor(self.reader, name, self.device)
            .map_err(|e| self.failed(name, e))
    }

    fn matmul(&mut self, name: &str) -> Result<Linear, LlmError> {
        let t = self.qtensor(name)?;
        Linear::new(Arc::new(t)).map_err(|e| self.failed(name, e))
    }

    /// A small tensor (norm weight, bias) as dense f32.
    fn dense(&mut self, name: &str) -> Result<Tensor, LlmError> {
        let t = self.qtensor(name)?;
        t.dequantize(self.device)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| self.failed(name, e))
    }
}
