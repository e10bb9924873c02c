"""The int8 machinery shared by export and analysis: calibration, grouping, PTQ, QDQ, QAT, the guard.

Layered below :mod:`edgepose.exporting` and :mod:`edgepose.analysis` (nothing here imports them):

- :mod:`.calibration` (the calibration windows) and :mod:`.calibrators` (range rules: minmax,
  entropy, percentile), :mod:`.targets` (which layout a runtime wants: ``ort-cpu``,
  ``tensorrt``) and :mod:`.recipes` (which ops a recipe quantizes: ``safe``, ``global``);
- :mod:`.groups` (the quantizable groups of an fp32 graph), :mod:`.ptq` (static QDQ through
  ONNX Runtime's quantizer) and :mod:`.qdq` (Q/DQ insertion by plan);
- :mod:`.qat` (conv-level fake-quant fine-tuning) and :mod:`.qat_graph` (fake-quant of the PTQ
  graph itself);
- :mod:`.probe` (:class:`~.probe.QuantProbe`: builds and scores graphs with any subset of groups
  int8), :mod:`.sensitivity` (one group at a time) and :mod:`.guard` (restore groups until an
  accuracy budget holds);
- :mod:`.planning` (which groups run int8 from measured end-to-end speed).
"""
