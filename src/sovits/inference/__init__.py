"""Voice conversion: `Converter` turns an input recording into the model's voice.

`ConvertOptions` holds every option of so-vits-svc 4.1's inference_main.py under full
English names (the `sovits infer` command keeps the original's short flags);
`Converter` loads a model, its content encoder and f0 extractors once and converts
waves or files one slice at a time. Modules are imported lazily by their users.
"""

from __future__ import annotations
