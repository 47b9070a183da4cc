"""Setup for i3d_keras: the Two-Stream Inflated 3D ConvNet in TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
    name="i3d_keras",
    version="0.1.0",
    description=(
        "Two-Stream Inflated 3D ConvNets (I3D, Carreira & Zisserman, CVPR 2017) "
        "in TensorFlow 2 / Keras 3"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["i3d_keras", "i3d_keras.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "numpy>=1.26,<3",
        "opencv-contrib-python-headless>=4.10,<6",
        "absl-py>=2.1,<3",
        "matplotlib>=3.8,<4",
        "tensorboard>=2.20,<3",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "ai-edge-litert>=2.0,<3",
                 "tensorflow-serving-api>=2.21,<2.22"],
        "litert": ["ai-edge-litert>=2.0,<3"],
        "beam": ["apache-beam>=2.60,<3"],
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
        # The documentation site (mkdocs.yml): `mkdocs serve`, `mkdocs build --strict`.
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.6,<10", "mkdocstrings>=1.0,<2",
                 "mkdocstrings-python>=2.0,<3", "mkdocs-gen-files>=0.6,<1",
                 "mkdocs-literate-nav>=0.6.3,<1"],
    },
    license="Apache-2.0",
)
