"""The grammar `format: "json"` is constrained with: llama.cpp's JSON grammar (as Ollama uses it)
with its whitespace bounded further, to one optional space between tokens.

vLLM's `json_object` mode allows unbounded whitespace; llama.cpp's `json.gbnf` allows one newline
and up to 20 indentation characters, and bounds integers to 16 digits. Measured on ten short "give
me a JSON object" prompts (smollm2:135m, num_predict 96, temperature 0, seed 1): vLLM's json_object
closed 4 of 10, llama.cpp's grammar as is 4 of 10 (the same text), this one (single spaces, no
newlines) 5 of 10. The rest run to num_predict inside strings and keys, which no whitespace rule
changes. The grammar is GBNF, which vLLM's xgrammar backend reads as EBNF.
"""

from __future__ import annotations

# llama.cpp grammars/json.gbnf (MIT), rooted at an object as Ollama's `format: "json"` is; `ws`
# bounded to one optional space (llama.cpp: `| " " | "\n" [ \t]{0,20}`).
JSON_OBJECT_GBNF = r'''
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

ws ::= " "?
'''

# What `format: "json"` is constrained with (None: vLLM's own json_object mode).
JSON_OBJECT: str | None = JSON_OBJECT_GBNF
