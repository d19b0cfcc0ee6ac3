"""mrcohort.segmentation"""
