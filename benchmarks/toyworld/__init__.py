"""A small world of flat-colour cartoons where the right colouring is known (see ``benchmarks.toyworld``)."""
