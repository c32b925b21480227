/* Prints llama.cpp's logits for a token sequence, as the oracle for paperdigest's model code.
 *
 * Usage: llama-logits MODEL.gguf PREFILL_IDS [DECODE_IDS]
 *   PREFILL_IDS: comma-separated token ids fed in one batch;
 *   DECODE_IDS:  comma-separated ids then fed one at a time (exercises the KV cache).
 * Prints one JSON object: {"steps": [{"position": P, "logits": [...]}, ...]} with the logits
 * of the last position after the prefill and after each decoded token. The KV cache is f32
 * and flash attention is off, so the numbers are as close to plain f32 arithmetic as
 * llama.cpp gets. Built and run by scripts/make-logit-goldens.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"
#include "llama-ids.h"

static void print_logits(struct llama_context *ctx, int n_vocab, int position, int first) {
    const float *logits = llama_get_logits_ith(ctx, -1);
    printf("%s{\"position\": %d, \"logits\": [", first ? "" : ", ", position);
    for (int i = 0; i < n_vocab; i++) printf(i ? ", %.6g" : "%.6g", logits[i]);
    printf("]}");
}

static void quiet(enum ggml_log_level level, const char *text, void *data) {
    (void)level; (void)text; (void)data;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PREFILL_IDS [DECODE_IDS]\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    static llama_token prefill[8192], decode[8192];
    int n_prefill = parse_ids(argv[2], prefill, 8192);
    int n_decode = argc > 3 ? parse_ids(argv[3], decode, 8192) : 0;
    if (n_prefill <= 0 || n_decode < 0) { fprintf(stderr, "bad token ids\n"); return 2; }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_prefill + n_decode + 16;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    /* LLAMA_LOGITS_DEFAULT_ATTENTION=1 keeps llama.cpp's own defaults instead: an f16 cache
     * and flash attention, what llama-completion runs with. */
    const char *defaults = getenv("LLAMA_LOGITS_DEFAULT_ATTENTION");
    if (!defaults || strcmp(defaults, "1") != 0) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    printf("{\"steps\": [");
    if (llama_decode(ctx, llama_batch_get_one(prefill, n_prefill))) { fprintf(stderr, "decode failed\n"); return 1; }
    print_logits(ctx, n_vocab, n_prefill - 1, 1);
    for (int i = 0; i < n_decode; i++) {
        if (llama_decode(ctx, llama_batch_get_one(&decode[i], 1))) { fprintf(stderr, "decode failed\n"); return 1; }
        print_logits(ctx, n_vocab, n_prefill + i, 0);
    }
    printf("]}\n");
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
