"""The intake service (医院接入): the hospitals' own topics in and out of the platform.

A hospital principal may write only `hospital.<id>.requests` and read only
`hospital.<id>.statements` (Kafka ACLs), so the topic a request arrives on says who sent it. The
intake moves each request to `claims.discharges` with the producer `hospital:<id>`, or refuses it
when its provider is not the sending hospital, and copies every statement, adjustment, reversal
and refusal to the statements topic of the hospital it is addressed to.
"""
