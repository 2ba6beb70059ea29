"""What every variant shares (Butane's ``base/v0_x``): the field copy with resources and local
files, trees, mount units, data URLs, the validation of the source, and the origins that map
output paths back to YAML paths. The sugar of a variant lives in ``butane_like.variants``."""
