/* Token ids from "1,2,3" for the llama.cpp tools in scripts/: at most `cap`, -1 on a bad id. */
#ifndef PAPERDIGEST_LLAMA_IDS_H
#define PAPERDIGEST_LLAMA_IDS_H
#include <stdlib.h>

#include "llama.h"

static int parse_ids(const char *text, llama_token *out, int cap) {
    int n = 0;
    const char *p = text;
    while (*p && n < cap) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        out[n++] = (llama_token)v;
        p = (*end == ',') ? end + 1 : end;
    }
    return n;
}
#endif
