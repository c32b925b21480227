/* Prints llama.cpp's intermediate tensors for one batch of token ids, to find the first
 * operation where our forward pass and llama.cpp's part (scripts/teacher-forced-agreement.py
 * says whether they do; this says where).
 *
 * Usage: llama-tensors MODEL.gguf IDS FILTER
 *   IDS:    comma-separated token ids, fed in one batch with llama.cpp's defaults (f16 cache,
 *           flash attention, 2 threads);
 *   FILTER: a substring of the tensor names to print, e.g. "-2" for layer 2 or "kqv_out".
 * Per tensor computed: its name, its shape, the first eight values of its last row (the last
 * token's), and a checksum over all its values (sum of value * (index % 7 + 1), in f64) that
 * two runs agree on only if every value does. llama.cpp's names: attn_norm-N, Qcur-N, Kcur-N,
 * Vcur-N (before and after RoPE), kqv_out-N, attn_out-N, ffn_inp-N, ffn_norm-N, ffn_gate-N,
 * ffn_up-N, ffn_swiglu-N, ffn_out-N, l_out-N (the last layer keeps only the last token).
 * Print ours at the same points from src/llm/models/transformer.rs for the comparison.
 *
 * Build: gcc -O2 -o llama-tensors scripts/llama-tensors.c -I$L/include -I$L/ggml/include \
 *          -L$L/build/bin -lllama -lggml -lggml-base -Wl,-rpath,$L/build/bin
 * with L the llama.cpp tree of ../shared/tools/llamacpp-anchor.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"
#include "llama-ids.h"

static const char *filter = "";

static bool on_tensor(struct ggml_tensor *t, bool ask, void *user_data) {
    (void) user_data;
    if (ask) return strstr(t->name, filter) != NULL;
    if (t->type != GGML_TYPE_F32) {
        printf("%s: type %d, not printed\n", t->name, t->type);
        return true;
    }
    float *values = malloc(ggml_nbytes(t));
    if (!values) return false;
    ggml_backend_tensor_get(t, values, 0, ggml_nbytes(t));
    size_t last = (size_t) (t->ne[1] - 1) * (t->nb[1] / 4) + (size_t) (t->ne[2] - 1) * (t->nb[2] / 4);
    printf("%s [%lld %lld %lld]:", t->name, (long long) t->ne[0], (long long) t->ne[1],
           (long long) t->ne[2]);
    for (int i = 0; i < 8 && i < t->ne[0]; i++) printf(" %.9g", values[last + i]);
    double check = 0;
    for (int64_t i = 0; i < ggml_nelements(t); i++) check += values[i] * (double) (i % 7 + 1);
    printf(" | checksum %.12g\n", check);
    free(values);
    return true;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf IDS FILTER\n", argv[0]);
        return 2;
    }
    filter = argv[3];
    static llama_token ids[8192];
    int n = parse_ids(argv[2], ids, 8192);
    if (n <= 0) { fprintf(stderr, "bad token ids\n"); return 2; }
    llama_backend_init();
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n + 16;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    cp.cb_eval = on_tensor;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    if (llama_decode(ctx, llama_batch_get_one(ids, n))) { fprintf(stderr, "decode failed\n"); return 1; }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
