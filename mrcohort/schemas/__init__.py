"""mrcohort.schemas"""
