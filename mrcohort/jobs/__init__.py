"""mrcohort.jobs"""
