#!/usr/bin/env python3
"""Golden chat-template renders for tests/chat_templates.rs, made with Python's jinja2 set up the
way Hugging Face's `apply_chat_template` sets it up (sandboxed, trim_blocks, lstrip_blocks,
loop controls, `tojson` without HTML escaping, `raise_exception`, `strftime_now`).

Usage: scripts/make-template-goldens.py [MODEL_DIR]

With MODEL_DIR (default: ~/.cache/paperdigest-test-models, when it exists), the templates
embedded in the real GGUF files there are extracted first into tests/golden/chat/templates/
(gemma-3-270m is a base model and carries none: it gets paperdigest's built-in Gemma template).
Then every template (those, the built-in ones in src/llm/templates/, and the test template
extensions.jinja) is rendered with every conversation below, with and without the generation
prompt, into tests/golden/chat/renders.json. Needs only `pip install jinja2`.
"""
import datetime
import json
import os
import struct
import sys
from pathlib import Path

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "chat"
TEMPLATES = GOLDEN / "templates"
BUILTIN = ROOT / "src" / "llm" / "templates"

# Real models whose GGUF carries a template: file name -> golden template name.
EMBEDDED = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2-135m-instruct",
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": "qwen2.5-coder-1.5b-instruct",
}

# Template name -> (path, bos_token, eos_token), the texts of the model's BOS/EOS tokens.
TARGETS = {
    "smollm2-135m-instruct": (TEMPLATES / "smollm2-135m-instruct.jinja", "<|im_start|>", "<|im_end|>"),
    "qwen2.5-coder-1.5b-instruct": (TEMPLATES / "qwen2.5-coder-1.5b-instruct.jinja", "<|endoftext|>", "<|im_end|>"),
    "builtin-chatml": (BUILTIN / "chatml.jinja", "", ""),
    "builtin-llama3": (BUILTIN / "llama3.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    # gemma-3-270m's own BOS/EOS texts.
    "builtin-gemma": (BUILTIN / "gemma.jinja", "<bos>", "<eos>"),
    "extensions": (TEMPLATES / "extensions.jinja", "<s>", "</s>"),
}

TRICKY = ('Summarise: "Attention Is All You Need" <b>bold</b> & \'quotes\' \u2014 '
          'Vi\u1ec7t \U0001F680\n  an indented line with a tab\there  ')

CONVERSATIONS = {
    "system_user": [
        {"role": "system", "content": "You summarise research papers in two sentences."},
        {"role": "user", "content": TRICKY},
    ],
    "user_only": [{"role": "user", "content": "What is 2 + 2?"}],
    "multi_turn": [
        {"role": "system", "content": "  Be brief.  "},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one?"},
    ],
    "user_assistant": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
    ],
    # Gemma's template refuses non-alternating roles with raise_exception.
    "two_users": [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ],
}


def read_gguf_strings(path, keys):
    """The string metadata values named in `keys` from a GGUF header (nothing else is kept)."""
    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    out = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        (version,) = struct.unpack("<I", f.read(4))
        if version < 2:
            raise SystemExit(f"{path}: GGUF version {version} is not supported here")
        _, n_kv = struct.unpack("<QQ", f.read(16))

        def read_str():
            (n,) = struct.unpack("<Q", f.read(8))
            return f.read(n).decode("utf-8")

        def skip(t):
            if t in sizes:
                f.seek(struct.calcsize("<" + sizes[t]), 1)
            elif t == 8:
                (n,) = struct.unpack("<Q", f.read(8))
                f.seek(n, 1)
            elif t == 9:
                et, n = struct.unpack("<IQ", f.read(12))
                if et in sizes:
                    f.seek(struct.calcsize("<" + sizes[et]) * n, 1)
                else:
                    for _ in range(n):
                        skip(et)
            else:
                raise SystemExit(f"{path}: unknown metadata type {t}")

        for _ in range(n_kv):
            key = read_str()
            (t,) = struct.unpack("<I", f.read(4))
            if key in keys and t == 8:
                out[key] = read_str()
            else:
                skip(t)
    return out


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "paperdigest-test-models"
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    if model_dir.is_dir():
        for file, name in EMBEDDED.items():
            gguf = model_dir / file
            if not gguf.exists():
                print(f"note: {gguf} is absent; keeping the committed {name}.jinja", file=sys.stderr)
                continue
            meta = read_gguf_strings(gguf, {"tokenizer.chat_template"})
            source = meta.get("tokenizer.chat_template")
            if source is None:
                raise SystemExit(f"{gguf} has no tokenizer.chat_template")
            (TEMPLATES / f"{name}.jinja").write_text(source, encoding="utf-8")
            print(f"extracted {name}.jinja from {gguf}", file=sys.stderr)

    env = environment()
    cases = []
    for name, (path, bos, eos) in TARGETS.items():
        source = path.read_text(encoding="utf-8")
        template = env.from_string(source)
        for conversation, messages in CONVERSATIONS.items():
            for add_generation_prompt in (True, False):
                case = {
                    "template": name,
                    "conversation": conversation,
                    "add_generation_prompt": add_generation_prompt,
                }
                try:
                    case["output"] = template.render(
                        messages=messages,
                        add_generation_prompt=add_generation_prompt,
                        bos_token=bos,
                        eos_token=eos,
                    )
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    golden = {
        "generator": "scripts/make-template-goldens.py (jinja2 " + jinja2.__version__ + ")",
        "templates": {
            name: {"path": str(path.relative_to(ROOT)), "bos_token": bos, "eos_token": eos}
            for name, (path, bos, eos) in TARGETS.items()
        },
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    out = GOLDEN / "renders.json"
    out.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
