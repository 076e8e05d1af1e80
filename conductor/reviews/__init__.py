"""Reviews: who may review (``rules``, pure), the reactions applied in batches (``reactions``),
and the review requests as a service (``service``)."""
