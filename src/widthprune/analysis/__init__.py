"""Analysis: statistics, paired comparisons, criteria agreement, capabilities, the study's claims
and its published table."""
