"""The smoke seal in the domain: the seals and notes stored on releases (``records``) and the
sealer that runs the suite and records its verdict (``sealer``)."""
