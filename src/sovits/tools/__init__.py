"""Model-file tools: merge, compress, inspect and ONNX export. They wrap
`sovits.models`, never re-declare it."""
