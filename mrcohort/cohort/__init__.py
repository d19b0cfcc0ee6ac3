"""mrcohort.cohort"""
