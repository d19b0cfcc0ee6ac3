"""QC pictures for people: one PNG per participant-visit (`picture`: coronal and axial slices
of the stitched image with the label overlay and the station seams) and one HTML page of
them (`gallery`). Pure: arrays or rows in, bytes or text out; the job writes the files."""
