def test_cast_builds_and_admin_reaches_dashboard(cast, login):
    response = login(cast.center_admin).get("/")
    assert response.status_code == 200
