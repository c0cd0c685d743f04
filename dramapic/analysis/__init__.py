"""Audio -> ``AnalysisResult``: the modules in the order the audio passes them (see ``dramapic/ARCHITECTURE.md``)."""
