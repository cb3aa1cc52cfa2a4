"""Conversion stage 4: timbre blending of the content units (-cr with -cm / -fr).

`TimbreStage` reads the cluster model or feature index a conversion names (once, then
kept) and pulls units [1, C, T] toward the target speaker's own: the nearest k-means
centres, or the retrieved stored units. The blend is per frame, so the offline and the
streaming converter both apply it to whatever frames they hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sovits.errors import InputError
from sovits.inference.options import ConvertOptions

if TYPE_CHECKING:
    from sovits.config import SvcConfig
    from sovits.retrieval.index import FeatureIndex
    from sovits.retrieval.kmeans import ClusterModel

__all__ = ["TimbreStage"]


class TimbreStage:
    """Timbre blending for one model (its config names the speakers)."""

    def __init__(self, config: SvcConfig):
        self.config = config
        self._models: dict[tuple[Path, bool], ClusterModel | FeatureIndex] = {}

    def model(self, options: ConvertOptions) -> ClusterModel | FeatureIndex:
        """The cluster model (-cm) or feature index (-fr), read on first use and kept."""
        path = options.cluster_model_path
        if path is None:
            raise InputError(
                "a cluster ratio (-cr) needs a cluster model or feature index (-cm)",
                hint="train one with `sovits train-cluster` or `sovits train-index`",
            )
        key = (Path(path).resolve(), options.feature_retrieval)
        if key not in self._models:
            if options.feature_retrieval:
                from sovits.retrieval.index import read_feature_index

                self._models[key] = read_feature_index(path)
            else:
                from sovits.retrieval.kmeans import read_cluster_model

                self._models[key] = read_cluster_model(path)
        return self._models[key]

    def blend(self, content: torch.Tensor, options: ConvertOptions) -> torch.Tensor:
        """Units [1, C, T] pulled toward the target speaker's by the -cr share."""
        if options.cluster_ratio == 0:
            return content
        model = self.model(options)
        if options.feature_retrieval:
            from sovits.retrieval.index import FeatureIndex, blend_with_retrieval

            assert isinstance(model, FeatureIndex)
            speaker_id = self.config.speaker_id(options.speaker)
            return blend_with_retrieval(model, content, speaker_id, options.cluster_ratio)
        from sovits.retrieval.kmeans import ClusterModel, blend_with_clusters

        assert isinstance(model, ClusterModel)
        return blend_with_clusters(model, content, options.speaker, options.cluster_ratio)
