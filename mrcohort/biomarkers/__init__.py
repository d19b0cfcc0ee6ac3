"""mrcohort.biomarkers"""
