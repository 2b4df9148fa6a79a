# stow_body.py OUT BOUNDARY FILE...: writes a multipart/related STOW-RS body holding
# each FILE as an application/dicom part.
import sys

out, boundary, files = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "wb") as f:
    for path in files:
        f.write(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n")
        f.write(open(path, "rb").read())
        f.write(b"\r\n")
    f.write(b"--" + boundary.encode() + b"--\r\n")
